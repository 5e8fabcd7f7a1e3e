"""REST routes about the app itself: login, application info, gateway discovery, commands, and fetches of
servers, channels, members and users that discord.py may make."""

from __future__ import annotations

from typing import Any

from tests.support import gateway as G
from tests.support import payloads
from tests.support.rest import ApiError, Ctx, Reply, form_error, route
from tests.support.state import Command, World

MISSING_ACCESS = ApiError(403, 50001, "Missing Access")


def _app_json(ctx: Ctx) -> dict[str, Any]:
    world = ctx.world
    flags = 0
    allowed = ctx.core.allowed_privileged_intents
    if allowed & G.GUILD_MEMBERS:
        flags |= 1 << 15
    if allowed & G.MESSAGE_CONTENT:
        flags |= 1 << 19
    return {
        "id": str(world.application_id),
        "name": world.bot.username,
        "icon": None,
        "description": "",
        "summary": "",
        "type": None,
        "bot_public": True,
        "bot_require_code_grant": False,
        "verify_key": "0" * 64,
        "flags": flags,
        "owner": payloads.user_json(world.users[world.owner_id]),
        "team": None,
        "bot": payloads.user_json(world.bot),
        "tags": [],
        "interactions_endpoint_url": None,
        "redirect_uris": [],
        "rpc_origins": [],
        "approximate_guild_count": len(world.guilds),
        "integration_types_config": {"0": {}},
    }


@route("GET", "/users/@me")
async def get_me(ctx: Ctx) -> Reply:
    return 200, payloads.user_json(ctx.world.bot)


@route("GET", "/oauth2/applications/@me")
async def get_oauth_app(ctx: Ctx) -> Reply:
    return 200, _app_json(ctx)


@route("GET", "/applications/@me")
async def get_app(ctx: Ctx) -> Reply:
    return 200, _app_json(ctx)


@route("GET", "/gateway")
async def get_gateway(ctx: Ctx) -> Reply:
    return 200, {"url": ctx.core.gateway_url}


@route("GET", "/gateway/bot")
async def get_gateway_bot(ctx: Ctx) -> Reply:
    limit = {"total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1}
    return 200, {"url": ctx.core.gateway_url, "shards": 1, "session_start_limit": limit}


# -- application commands --------------------------------------------------------------------------------------


def _command_json(cmd: Command) -> dict[str, Any]:
    data = {
        "type": 1,
        "description": "",
        "options": [],
        "default_member_permissions": None,
        "dm_permission": True,
        "nsfw": False,
        "contexts": None,
        "integration_types": [0],
        "name_localizations": None,
        "description_localizations": None,
    }
    data.update(cmd.payload)
    data.update({"id": str(cmd.id), "application_id": str(cmd.application_id), "version": str(cmd.version)})
    if cmd.guild_id is not None:
        data["guild_id"] = str(cmd.guild_id)
    return data


def _check_scope(ctx: Ctx) -> int | None:
    if ctx.snowflake("application_id") != ctx.world.application_id:
        raise MISSING_ACCESS
    if "guild_id" not in ctx.params:
        return None
    guild_id = ctx.snowflake("guild_id")
    if ctx.core.bot_member(guild_id) is None:
        raise MISSING_ACCESS
    return guild_id


def _check_command(payload: dict[str, Any]) -> None:
    def check_options(options: list[dict[str, Any]], where: str) -> None:
        seen_optional = False
        for opt in options:
            if opt.get("type") in (1, 2):
                check_options(opt.get("options") or [], f"{where}.{opt['name']}")
                continue
            if opt.get("required"):
                if seen_optional:
                    raise form_error("options", [f"{where}: required option {opt['name']!r} after an optional one"])
            else:
                seen_optional = True
            if opt.get("autocomplete") and opt.get("choices"):
                raise form_error("options", [f"{where}.{opt['name']}: autocomplete and choices together"])

    check_options(payload.get("options") or [], payload.get("name", "?"))


def _upsert(ctx: Ctx, guild_id: int | None, payload: dict[str, Any]) -> Command:
    world = ctx.world
    _check_command(payload)
    ctype = payload.get("type", 1)
    for cmd in world.commands.values():
        if cmd.guild_id == guild_id and cmd.name == payload["name"] and cmd.type == ctype:
            cmd.payload, cmd.version = payload, cmd.version + 1
            return cmd
    cmd = Command(world.ids.next(), world.application_id, guild_id, payload["name"], ctype, payload)
    world.commands[cmd.id] = cmd
    return cmd


def _scoped(world: World, guild_id: int | None) -> list[Command]:
    return [c for c in world.commands.values() if c.guild_id == guild_id]


@route("PUT", "/applications/{application_id}/commands")
@route("PUT", "/applications/{application_id}/guilds/{guild_id}/commands")
async def bulk_overwrite(ctx: Ctx) -> Reply:
    guild_id = _check_scope(ctx)
    body = ctx.json or []
    names = [(c.get("type", 1), c["name"]) for c in body]
    if len(set(names)) != len(names):
        raise form_error("commands", ["APPLICATION_COMMANDS_DUPLICATE_NAME"])
    kept = [_upsert(ctx, guild_id, payload) for payload in body]
    keep_ids = {c.id for c in kept}
    for cmd in _scoped(ctx.world, guild_id):
        if cmd.id not in keep_ids:
            del ctx.world.commands[cmd.id]
    return 200, [_command_json(c) for c in kept]


@route("GET", "/applications/{application_id}/commands")
@route("GET", "/applications/{application_id}/guilds/{guild_id}/commands")
async def list_commands(ctx: Ctx) -> Reply:
    return 200, [_command_json(c) for c in _scoped(ctx.world, _check_scope(ctx))]


@route("POST", "/applications/{application_id}/commands")
@route("POST", "/applications/{application_id}/guilds/{guild_id}/commands")
async def create_command(ctx: Ctx) -> Reply:
    cmd = _upsert(ctx, _check_scope(ctx), ctx.json)
    return 201, _command_json(cmd)


def _command(ctx: Ctx) -> Command:
    guild_id = _check_scope(ctx)
    cmd = ctx.world.commands.get(ctx.snowflake("command_id"))
    if cmd is None or cmd.guild_id != guild_id:
        raise ApiError(404, 10063, "Unknown application command")
    return cmd


@route("GET", "/applications/{application_id}/commands/{command_id}")
@route("GET", "/applications/{application_id}/guilds/{guild_id}/commands/{command_id}")
async def get_command(ctx: Ctx) -> Reply:
    return 200, _command_json(_command(ctx))


@route("PATCH", "/applications/{application_id}/commands/{command_id}")
@route("PATCH", "/applications/{application_id}/guilds/{guild_id}/commands/{command_id}")
async def edit_command(ctx: Ctx) -> Reply:
    cmd = _command(ctx)
    payload = {**cmd.payload, **(ctx.json or {})}
    _check_command(payload)
    cmd.payload, cmd.name, cmd.version = payload, payload["name"], cmd.version + 1
    return 200, _command_json(cmd)


@route("DELETE", "/applications/{application_id}/commands/{command_id}")
@route("DELETE", "/applications/{application_id}/guilds/{guild_id}/commands/{command_id}")
async def delete_command(ctx: Ctx) -> Reply:
    del ctx.world.commands[_command(ctx).id]
    return 204, None


# -- fetches ---------------------------------------------------------------------------------------------------


def _guild_id(ctx: Ctx) -> int:
    guild_id = ctx.snowflake("guild_id")
    if guild_id not in ctx.world.guilds:
        raise ApiError(404, 10004, "Unknown Guild")
    if ctx.core.bot_member(guild_id) is None:
        raise MISSING_ACCESS
    return guild_id


@route("GET", "/guilds/{guild_id}")
async def get_guild(ctx: Ctx) -> Reply:
    world = ctx.world
    guild = world.guilds[_guild_id(ctx)]
    data = payloads.guild_json(world, guild)
    if ctx.query.get("with_counts") in ("true", "True", "1"):
        data["approximate_member_count"] = len(guild.member_ids)
        data["approximate_presence_count"] = 0
    return 200, data


@route("GET", "/guilds/{guild_id}/channels")
async def get_guild_channels(ctx: Ctx) -> Reply:
    guild = ctx.world.guilds[_guild_id(ctx)]
    return 200, [payloads.channel_json(ctx.world.channels[c]) for c in guild.channel_ids]


@route("GET", "/guilds/{guild_id}/roles")
async def get_guild_roles(ctx: Ctx) -> Reply:
    guild = ctx.world.guilds[_guild_id(ctx)]
    return 200, [payloads.role_json(ctx.world.roles[r]) for r in guild.role_ids]


@route("GET", "/guilds/{guild_id}/members/{user_id}")
async def get_member(ctx: Ctx) -> Reply:
    guild_id = _guild_id(ctx)
    member = ctx.world.members.get((guild_id, ctx.snowflake("user_id")))
    if member is None:
        raise ApiError(404, 10007, "Unknown Member")
    return 200, payloads.member_json(ctx.world, member)


@route("GET", "/guilds/{guild_id}/members")
async def list_members(ctx: Ctx) -> Reply:
    guild_id = _guild_id(ctx)
    if not ctx.core.allowed_privileged_intents & G.GUILD_MEMBERS:
        raise MISSING_ACCESS  # listing members needs the privileged members intent enabled for the app
    after = int(ctx.query.get("after", 0))
    limit = int(ctx.query.get("limit", 1))
    ids = sorted(u for u in ctx.world.guilds[guild_id].member_ids if u > after)[:limit]
    return 200, [payloads.member_json(ctx.world, ctx.world.member(guild_id, u)) for u in ids]


@route("GET", "/channels/{channel_id}")
async def get_channel(ctx: Ctx) -> Reply:
    channel = ctx.world.channels.get(ctx.snowflake("channel_id"))
    if channel is None:
        raise ApiError(404, 10003, "Unknown Channel")
    if not ctx.core.permissions_in(channel, ctx.world.bot.id):
        raise MISSING_ACCESS
    return 200, payloads.channel_json(channel)


@route("GET", "/users/{user_id}")
async def get_user(ctx: Ctx) -> Reply:
    user = ctx.world.users.get(ctx.snowflake("user_id"))
    if user is None:
        raise ApiError(404, 10013, "Unknown User")
    return 200, payloads.user_json(user)
