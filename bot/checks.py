"""Who may do what, named and in one place.

A moderator is a member who can manage messages in the channel (or manage the server). The decorators set both
the runtime check and `default_permissions`, so Discord hides a moderator command from those who may not use it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import discord
from discord import app_commands

from bot.errors import NotAllowed

T = TypeVar("T")


def is_moderator(permissions: discord.Permissions) -> bool:
    """Moderators may delete anyone's results (and, later, manage the queue)."""
    return permissions.administrator or permissions.manage_messages or permissions.manage_guild


def may_delete(owner_id: int | None, user_id: int, permissions: discord.Permissions) -> bool:
    """A result may be deleted by the member who asked for it, or by a moderator."""
    return (owner_id is not None and owner_id == user_id) or is_moderator(permissions)


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


def moderator() -> Callable[[T], T]:
    """For moderator commands: hidden from members by default permissions, and checked again when run."""

    def decorate(func: Any) -> Any:
        def predicate(interaction: discord.Interaction) -> bool:
            if not is_moderator(interaction.permissions):
                raise NotAllowed("this is for moderators.")
            return True

        func = app_commands.check(predicate)(func)
        return app_commands.default_permissions(manage_messages=True)(func)

    return decorate
