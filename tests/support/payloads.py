"""Discord JSON shapes for the fake's state, as Discord sends them (snowflakes as strings, ISO timestamps)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.support import permissions as P
from tests.support.state import Attachment, Channel, Guild, Member, Message, Role, User, World


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=UTC).isoformat()


def user_json(user: User) -> dict[str, Any]:
    return {
        "id": str(user.id),
        "username": user.username,
        "global_name": user.global_name,
        "discriminator": "0",
        "avatar": None,
        "bot": user.bot,
        "system": False,
        "public_flags": 0,
        "flags": 0,
        "banner": None,
        "accent_color": None,
        "avatar_decoration_data": None,
        "primary_guild": None,
        "collectibles": None,
    }


def role_json(role: Role) -> dict[str, Any]:
    return {
        "id": str(role.id),
        "name": role.name,
        "permissions": str(role.permissions),
        "position": role.position,
        "color": 0,
        "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
        "hoist": False,
        "managed": role.managed,
        "mentionable": role.mentionable,
        "icon": None,
        "unicode_emoji": None,
        "flags": 0,
        "description": None,
    }


def channel_json(channel: Channel) -> dict[str, Any]:
    return {
        "id": str(channel.id),
        "guild_id": str(channel.guild_id),
        "type": channel.type,
        "name": channel.name,
        "position": channel.position,
        "permission_overwrites": [
            {"id": str(o.id), "type": o.type, "allow": str(o.allow), "deny": str(o.deny)} for o in channel.overwrites
        ],
        "topic": channel.topic,
        "nsfw": channel.nsfw,
        "last_message_id": None,
        "rate_limit_per_user": 0,
        "parent_id": None,
        "flags": 0,
    }


def member_json(world: World, member: Member, *, with_user: bool = True) -> dict[str, Any]:
    data: dict[str, Any] = {
        "roles": [str(r) for r in member.role_ids],
        "nick": member.nick,
        "avatar": None,
        "banner": None,
        "joined_at": iso(member.joined_at),
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "pending": False,
        "flags": 0,
        "communication_disabled_until": None,
    }
    if with_user:
        data["user"] = user_json(world.users[member.user_id])
    return data


def guild_json(world: World, guild: Guild) -> dict[str, Any]:
    """The REST guild object (no channels or members)."""
    return {
        "id": str(guild.id),
        "name": guild.name,
        "icon": None,
        "splash": None,
        "discovery_splash": None,
        "banner": None,
        "description": None,
        "owner_id": str(guild.owner_id),
        "region": "deprecated",
        "afk_channel_id": None,
        "afk_timeout": 300,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "roles": [role_json(world.roles[r]) for r in guild.role_ids],
        "emojis": [],
        "stickers": [],
        "features": [],
        "mfa_level": 0,
        "application_id": None,
        "system_channel_id": None,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "public_updates_channel_id": None,
        "safety_alerts_channel_id": None,
        "max_members": 500000,
        "vanity_url_code": None,
        "premium_tier": 0,
        "premium_subscription_count": 0,
        "preferred_locale": guild.locale,
        "nsfw_level": 0,
        "nsfw": False,
        "premium_progress_bar_enabled": False,
        "max_video_channel_users": 25,
        "max_stage_video_channel_users": 50,
    }


def guild_create_json(world: World, guild: Guild, *, all_members: bool) -> dict[str, Any]:
    """GUILD_CREATE: without the presences intent Discord sends only the bot's own member."""
    members = [world.member(guild.id, u) for u in guild.member_ids]
    if not all_members:
        members = [m for m in members if m.user_id == world.bot.id]
    data = guild_json(world, guild)
    data.update(
        {
            "joined_at": iso(world.member(guild.id, world.bot.id).joined_at),
            "large": len(guild.member_ids) > 250,
            "unavailable": False,
            "member_count": len(guild.member_ids),
            "voice_states": [],
            "members": [member_json(world, m) for m in members],
            "channels": [channel_json(world.channels[c]) for c in guild.channel_ids],
            "threads": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "lazy": True,
        }
    )
    return data


def attachment_json(att: Attachment) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(att.id),
        "filename": att.filename,
        "size": att.size,
        "url": att.url,
        "proxy_url": att.url,
        "content_type": att.content_type,
        "flags": 0,
    }
    if att.description is not None:
        data["description"] = att.description
    if att.width is not None:
        data["width"], data["height"] = att.width, att.height
    return data


def message_json(world: World, msg: Message, *, viewer_id: int | None = None, depth: int = 0) -> dict[str, Any]:
    """The message as `viewer_id` (default: the bot) sees it."""
    viewer = world.bot.id if viewer_id is None else viewer_id
    author = world.users[msg.author_id]
    data: dict[str, Any] = {
        "id": str(msg.id),
        "channel_id": str(msg.channel_id),
        "author": user_json(author),
        "content": msg.content,
        "timestamp": iso(msg.created_at),
        "edited_timestamp": iso(msg.edited_at),
        "tts": msg.tts,
        "mention_everyone": msg.mention_everyone,
        "mentions": [user_json(world.users[u]) for u in msg.mention_user_ids],
        "mention_roles": [str(r) for r in msg.mention_role_ids],
        "attachments": [attachment_json(a) for a in msg.attachments],
        "embeds": msg.embeds,
        "components": msg.components,
        "pinned": False,
        "type": msg.type,
        "flags": msg.flags,
        "reactions": [
            {
                "emoji": emoji_json(key),
                "count": len(users),
                "count_details": {"burst": 0, "normal": len(users)},
                "me": viewer in users,
                "me_burst": False,
                "burst_colors": [],
            }
            for key, users in msg.reactions.items()
            if users
        ],
    }
    if msg.guild_id is not None:
        data["guild_id"] = str(msg.guild_id)
        member = world.members.get((msg.guild_id, msg.author_id))
        if member is not None and msg.webhook_id is None:
            data["member"] = member_json(world, member, with_user=False)
    if msg.webhook_id is not None:
        data["webhook_id"] = str(msg.webhook_id)
        data["application_id"] = str(msg.webhook_id)
    if msg.interaction_id is not None:
        inter = world.interactions[msg.interaction_id]
        data["interaction_metadata"] = {
            "id": str(inter.id),
            "type": inter.type,
            "user": user_json(world.users[inter.user_id]),
            "authorizing_integration_owners": {"0": str(inter.guild_id)} if inter.guild_id else {},
        }
    if msg.message_reference is not None:
        data["message_reference"] = {k: str(v) if k.endswith("_id") else v for k, v in msg.message_reference.items()}
        ref = world.messages.get(int(msg.message_reference.get("message_id", 0)))
        if depth == 0:
            data["referenced_message"] = (
                message_json(world, ref, viewer_id=viewer_id, depth=1) if ref and not ref.deleted else None
            )
    return data


def emoji_json(key: str) -> dict[str, Any]:
    """A reaction key is the unicode emoji itself, or `name:id` for a custom one."""
    if ":" in key:
        name, _, eid = key.rpartition(":")
        return {"id": eid, "name": name, "animated": False}
    return {"id": None, "name": key}


def strip_content(data: dict[str, Any]) -> dict[str, Any]:
    """What an app without the MESSAGE_CONTENT intent sees of someone else's message."""
    data = dict(data)
    data.update({"content": "", "embeds": [], "attachments": [], "components": []})
    data.pop("poll", None)
    return data


def permissions_str(value: int) -> str:
    return str(value & P.ALL)
