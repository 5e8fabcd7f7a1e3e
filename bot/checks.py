"""Who may do what, named and in one place.

Results may be deleted by their requester or by anyone who can manage messages in the channel. The queue is
moderated by members with Manage Server, or with the server's moderator role (`/mod role`, which only Manage
Server may set; else the `IMAGINE_MODERATOR_ROLE` setting, a role id: names are not unique across servers).
`is_moderator()` sets both the runtime check and `default_permissions`, so Discord hides moderator commands from
members; a moderator role without Manage Server sees them once the server's admins allow the role under Server
Settings > Integrations (Discord decides visibility, the bot decides who may run).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import discord
from discord import app_commands

from bot.errors import NotAllowed
from imagine import moderation

T = TypeVar("T")


def manages_messages(permissions: discord.Permissions) -> bool:
    """Those who may delete anyone's results."""
    return permissions.administrator or permissions.manage_messages or permissions.manage_guild


def may_delete(owner_id: int | None, user_id: int, permissions: discord.Permissions) -> bool:
    """A result may be deleted by the member who asked for it, or by a moderator."""
    return (owner_id is not None and owner_id == user_id) or manages_messages(permissions)


def ensure_may_delete(owner_id: int | None, user: discord.abc.User, permissions: discord.Permissions) -> None:
    if not may_delete(owner_id, user.id, permissions):
        raise NotAllowed("only the member who asked for this image, or a moderator, can delete it.")


def ensure_member(user: discord.abc.User) -> None:
    """Bots (and webhooks) never start jobs: a loop of bots re-rolling each other is not a feature."""
    if user.bot:
        raise NotAllowed("bots cannot ask for images.")


def in_guild() -> Callable[[T], T]:
    """Commands that need a server (results, buttons and reactions all live in a channel of one)."""

    def predicate(interaction: discord.Interaction) -> bool:
        if interaction.guild_id is None:
            raise NotAllowed("this works in a server channel, not in direct messages.")
        ensure_member(interaction.user)
        return True

    return app_commands.check(predicate)


#: What Discord asks of a member before it shows them moderator commands.
MODERATOR_PERMISSIONS = discord.Permissions(manage_guild=True)


async def member_moderates(
    client: Any, guild_id: int | None, member: discord.abc.User, permissions: discord.Permissions
) -> bool:
    """Manage Server (or administrator), or the moderator role: the server's own, else the configured one."""
    if permissions.administrator or permissions.manage_guild:
        return True
    if guild_id is None or not isinstance(member, discord.Member):
        return False
    role_id = await asyncio.to_thread(moderation.moderator_role, client.queue_conn, guild_id)
    if role_id is not None:
        return any(role.id == role_id for role in member.roles)
    configured = str(client.settings.moderator_role or "").strip()
    if not configured.isdigit():  # by id only: a name matches a role anyone can create in their own server
        return False
    return any(str(role.id) == configured for role in member.roles)


def manages_server() -> Callable[[T], T]:
    """For what decides who moderates (`/mod role`): Manage Server (or administrator) only, never the moderator
    role itself, so a role's holders cannot hand it on (to @everyone, say)."""

    def predicate(interaction: discord.Interaction) -> bool:
        permissions = interaction.permissions
        if not (permissions.administrator or permissions.manage_guild):
            raise NotAllowed("sorry, only members with Manage Server can choose the moderator role.")
        return True

    def decorate(func: Any) -> Any:
        return app_commands.default_permissions(MODERATOR_PERMISSIONS)(app_commands.check(predicate)(func))

    return decorate


async def moderates(interaction: discord.Interaction) -> bool:
    return await member_moderates(interaction.client, interaction.guild_id, interaction.user, interaction.permissions)


def is_moderator() -> Callable[[T], T]:
    """For moderator commands (and their group or cog): hidden from members by `default_permissions` (Manage
    Server), and checked again when run, where the moderator role counts too (see the module docstring)."""

    async def predicate(interaction: discord.Interaction) -> bool:
        if not await moderates(interaction):
            raise NotAllowed("sorry, that is for this server's moderators (Manage Server, or the moderator role).")
        return True

    def decorate(func: Any) -> Any:
        if not isinstance(func, (type, app_commands.Group)):  # a group's children carry the check themselves
            func = app_commands.check(predicate)(func)
        return app_commands.default_permissions(MODERATOR_PERMISSIONS)(func)

    return decorate
