"""Channel routes: messages (create with files, edit, delete, fetch, history), reactions, typing.

The bot's channel permissions are enforced as Discord does (403 50013), and reads respect whether the app has
the MESSAGE_CONTENT intent enabled.
"""

from __future__ import annotations

from typing import Any

from tests.support import gateway as G
from tests.support import messages as M
from tests.support import payloads
from tests.support import permissions as P
from tests.support.rest import ApiError, Ctx, Reply, form_error, route
from tests.support.state import Channel, Message

MISSING_PERMISSIONS = ApiError(403, 50013, "Missing Permissions")


def _channel(ctx: Ctx) -> Channel:
    channel = ctx.world.channels.get(ctx.snowflake("channel_id"))
    if channel is None:
        raise ApiError(404, 10003, "Unknown Channel")
    if not ctx.core.permissions_in(channel, ctx.world.bot.id) & P.VIEW_CHANNEL:
        raise ApiError(403, 50001, "Missing Access")
    return channel


def _need(ctx: Ctx, channel: Channel, bits: int) -> None:
    if ctx.core.permissions_in(channel, ctx.world.bot.id) & bits != bits:
        raise MISSING_PERMISSIONS


def _message(ctx: Ctx, channel: Channel) -> Message:
    msg = ctx.world.messages.get(ctx.snowflake("message_id"))
    if msg is None or msg.deleted or msg.ephemeral or msg.channel_id != channel.id:
        raise ApiError(404, 10008, "Unknown Message")
    return msg


def visible_json(ctx: Ctx, msg: Message) -> dict[str, Any]:
    """A message read over REST: content stripped unless the app may read it."""
    data = payloads.message_json(ctx.world, msg)
    bot_id = ctx.world.bot.id
    if (
        not ctx.core.allowed_privileged_intents & G.MESSAGE_CONTENT
        and msg.author_id != bot_id
        and bot_id not in msg.mention_user_ids
    ):
        data = payloads.strip_content(data)
    return data


@route("POST", "/channels/{channel_id}/messages")
async def create_message(ctx: Ctx) -> Reply:
    channel = _channel(ctx)
    payload = ctx.json or {}
    needed = P.SEND_MESSAGES
    if ctx.files:
        needed |= P.ATTACH_FILES
    if payload.get("message_reference"):
        needed |= P.READ_MESSAGE_HISTORY
    _need(ctx, channel, needed)
    if (payload.get("flags") or 0) & ~M.SETTABLE_FLAGS:
        raise form_error("flags", [f"flags {payload['flags']} include bits a channel message cannot set"])
    repeat = _same_nonce(ctx, channel, payload)
    if repeat is not None:
        return 200, payloads.message_json(ctx.world, repeat)
    limit = ctx.core.guild_of(channel).upload_limit
    msg = await M.create_message(ctx.core, channel.id, ctx.world.bot.id, payload, ctx.files, limit=limit)
    if payload.get("nonce") is not None:
        msg.nonce = str(payload["nonce"])
    return 200, payloads.message_json(ctx.world, msg)


#: How long Discord remembers a nonce for `enforce_nonce` ("the past few minutes").
NONCE_WINDOW_S = 5 * 60


def _same_nonce(ctx: Ctx, channel: Channel, payload: dict[str, Any]) -> Message | None:
    """With `enforce_nonce`, the bot's recent message with the same nonce: Discord returns it instead of a new one."""
    if not payload.get("enforce_nonce") or payload.get("nonce") is None:
        return None
    nonce, now = str(payload["nonce"]), ctx.world.clock.now()
    for msg in ctx.world.messages.values():
        if (
            msg.channel_id == channel.id
            and msg.author_id == ctx.world.bot.id
            and msg.nonce == nonce
            and now - msg.created_at <= NONCE_WINDOW_S
        ):
            return msg
    return None


@route("GET", "/channels/{channel_id}/messages/{message_id}")
async def get_message(ctx: Ctx) -> Reply:
    channel = _channel(ctx)
    _need(ctx, channel, P.READ_MESSAGE_HISTORY)
    return 200, visible_json(ctx, _message(ctx, channel))


@route("GET", "/channels/{channel_id}/messages")
async def list_messages(ctx: Ctx) -> Reply:
    channel = _channel(ctx)
    _need(ctx, channel, P.READ_MESSAGE_HISTORY)
    limit = int(ctx.query.get("limit", 50))
    found = sorted(
        (m for m in ctx.world.messages.values() if m.channel_id == channel.id and not m.deleted and not m.ephemeral),
        key=lambda m: m.id,
        reverse=True,
    )
    if "before" in ctx.query:
        found = [m for m in found if m.id < int(ctx.query["before"])]
    if "after" in ctx.query:
        found = [m for m in reversed(found) if m.id > int(ctx.query["after"])][:limit][::-1]
    if "around" in ctx.query:
        pivot = int(ctx.query["around"])
        found = sorted(found, key=lambda m: abs(m.id - pivot))[:limit]
        found.sort(key=lambda m: m.id, reverse=True)
    return 200, [visible_json(ctx, m) for m in found[:limit]]


@route("PATCH", "/channels/{channel_id}/messages/{message_id}")
async def edit_message(ctx: Ctx) -> Reply:
    channel = _channel(ctx)
    msg = _message(ctx, channel)
    if msg.author_id != ctx.world.bot.id:
        raise ApiError(403, 50005, "Cannot edit a message authored by another user")
    if ctx.files:
        _need(ctx, channel, P.ATTACH_FILES)
    limit = ctx.core.guild_of(channel).upload_limit
    await M.edit_message(ctx.core, msg, ctx.json or {}, ctx.files, limit=limit)
    return 200, payloads.message_json(ctx.world, msg)


@route("DELETE", "/channels/{channel_id}/messages/{message_id}")
async def delete_message(ctx: Ctx) -> Reply:
    channel = _channel(ctx)
    msg = _message(ctx, channel)
    if msg.author_id != ctx.world.bot.id:
        _need(ctx, channel, P.MANAGE_MESSAGES)
    await M.delete_message(ctx.core, msg)
    return 204, None


@route("POST", "/channels/{channel_id}/typing")
async def typing(ctx: Ctx) -> Reply:
    _need(ctx, _channel(ctx), P.SEND_MESSAGES)
    return 204, None


# -- reactions -------------------------------------------------------------------------------------------------


def _emoji(ctx: Ctx) -> str:
    key = ctx.params["emoji_name"]
    if ":" in key or not key or len(key) > 16:
        raise ApiError(400, 10014, "Unknown Emoji")  # the fake models no custom emojis
    return key


async def add_reaction(ctx_core: Any, msg: Message, key: str, user_id: int) -> None:
    """Record a reaction and dispatch MESSAGE_REACTION_ADD (shared with the scenario's member reactions)."""
    world = ctx_core.world
    users = msg.reactions.setdefault(key, [])
    if user_id in users:
        return
    users.append(user_id)
    data: dict[str, Any] = {
        "user_id": str(user_id),
        "channel_id": str(msg.channel_id),
        "message_id": str(msg.id),
        "message_author_id": str(msg.author_id),
        "emoji": payloads.emoji_json(key),
        "burst": False,
        "burst_colors": [],
        "type": 0,
    }
    if msg.guild_id is not None:
        data["guild_id"] = str(msg.guild_id)
        data["member"] = payloads.member_json(world, world.member(msg.guild_id, user_id))
    await ctx_core.gateway.dispatch("MESSAGE_REACTION_ADD", data, guild_id=msg.guild_id)
    world.changed()


async def remove_reaction(ctx_core: Any, msg: Message, key: str, user_id: int) -> None:
    world = ctx_core.world
    users = msg.reactions.get(key, [])
    if user_id not in users:
        return
    users.remove(user_id)
    if not users:
        del msg.reactions[key]
    data: dict[str, Any] = {
        "user_id": str(user_id),
        "channel_id": str(msg.channel_id),
        "message_id": str(msg.id),
        "emoji": payloads.emoji_json(key),
        "burst": False,
        "type": 0,
    }
    if msg.guild_id is not None:
        data["guild_id"] = str(msg.guild_id)
    await ctx_core.gateway.dispatch("MESSAGE_REACTION_REMOVE", data, guild_id=msg.guild_id)
    world.changed()


@route("PUT", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji_name}/@me")
async def put_own_reaction(ctx: Ctx) -> Reply:
    channel = _channel(ctx)
    msg = _message(ctx, channel)
    key = _emoji(ctx)
    _need(ctx, channel, P.READ_MESSAGE_HISTORY | (0 if msg.reactions.get(key) else P.ADD_REACTIONS))
    await add_reaction(ctx.core, msg, key, ctx.world.bot.id)
    return 204, None


@route("DELETE", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji_name}/@me")
async def delete_own_reaction(ctx: Ctx) -> Reply:
    channel = _channel(ctx)
    await remove_reaction(ctx.core, _message(ctx, channel), _emoji(ctx), ctx.world.bot.id)
    return 204, None


@route("DELETE", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji_name}/{user_id}")
async def delete_user_reaction(ctx: Ctx) -> Reply:
    channel = _channel(ctx)
    msg = _message(ctx, channel)
    user_id = ctx.snowflake("user_id")
    if user_id != ctx.world.bot.id:
        _need(ctx, channel, P.MANAGE_MESSAGES)
    await remove_reaction(ctx.core, msg, _emoji(ctx), user_id)
    return 204, None


@route("GET", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji_name}")
async def list_reaction_users(ctx: Ctx) -> Reply:
    channel = _channel(ctx)
    _need(ctx, channel, P.READ_MESSAGE_HISTORY)
    users = _message(ctx, channel).reactions.get(_emoji(ctx), [])
    after = int(ctx.query.get("after", 0))
    limit = int(ctx.query.get("limit", 25))
    return 200, [payloads.user_json(ctx.world.users[u]) for u in sorted(users) if u > after][:limit]


@route("DELETE", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji_name}")
@route("DELETE", "/channels/{channel_id}/messages/{message_id}/reactions")
async def clear_reactions(ctx: Ctx) -> Reply:
    channel = _channel(ctx)
    _need(ctx, channel, P.MANAGE_MESSAGES)
    msg = _message(ctx, channel)
    keys = [_emoji(ctx)] if "emoji_name" in ctx.params else list(msg.reactions)
    for key in keys:
        msg.reactions.pop(key, None)
    data: dict[str, Any] = {"channel_id": str(msg.channel_id), "message_id": str(msg.id)}
    if msg.guild_id is not None:
        data["guild_id"] = str(msg.guild_id)
    if "emoji_name" in ctx.params:
        data["emoji"] = payloads.emoji_json(keys[0])
        await ctx.core.gateway.dispatch("MESSAGE_REACTION_REMOVE_EMOJI", data, guild_id=msg.guild_id)
    else:
        await ctx.core.gateway.dispatch("MESSAGE_REACTION_REMOVE_ALL", data, guild_id=msg.guild_id)
    return 204, None
