"""The one place errors become what a member reads: one short ephemeral line. Tracebacks go to the log only.

Commands, buttons, modals and autocomplete all end here (`tree.on_error` for commands; the callbacks of views and
dynamic items call `answer` themselves, since discord.py routes their errors elsewhere).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import discord
import redis
from discord import app_commands

from bot.flags import FlagError
from imagine.admission import Refused
from imagine.contract import SpecError

log = logging.getLogger(__name__)

FIELD_NAMES = {
    "prompt": "the prompt",
    "negative_prompt": "the negative prompt",
    "seed": "seed",
    "steps": "steps",
    "guidance": "guidance",
    "width": "the size",
    "height": "the size",
    "count": "count",
    "model": "model",
    "sampler": "sampler",
}


class Refusal(Exception):
    """Something the member asked for that cannot be done; its message is shown as it is."""


class NotAllowed(app_commands.CheckFailure):
    """The member may not do this (press this button, use this command)."""


class JobGone(Refusal):
    """A button or reaction names a job whose record expired."""

    def __init__(self) -> None:
        super().__init__("that image is too old: its details have expired. Run /imagine again.")


def explain(error: BaseException) -> str:
    """The member-facing sentence for `error`; unknown errors get a generic line (and are logged by the caller)."""
    if isinstance(error, app_commands.CommandInvokeError):
        error = error.original
    if isinstance(error, (Refusal, FlagError, Refused)):
        return str(error)
    if isinstance(error, SpecError):
        field = error.field.split(".")[0]
        return f"⚠️ {FIELD_NAMES.get(field, field)} {error.message}."
    if isinstance(error, NotAllowed):
        return str(error) or "you are not allowed to do that."
    if isinstance(error, app_commands.CommandOnCooldown):
        return f"slow down: try again in {error.retry_after:.0f} s."
    if isinstance(error, app_commands.CheckFailure):
        return "you are not allowed to do that here."
    if isinstance(error, (redis.RedisError, ConnectionError)):
        return "the queue cannot be reached right now; try again in a minute."
    if isinstance(error, discord.Forbidden):
        return "I am missing a permission in this channel (send messages, attach files or read history)."
    return "something went wrong on my side; it has been logged."


def expected(error: BaseException) -> bool:
    """Errors that are the member's, not ours: no traceback in the log for those."""
    if isinstance(error, app_commands.CommandInvokeError):
        error = error.original
    return isinstance(error, (Refusal, FlagError, Refused, SpecError, app_commands.CheckFailure))


async def answer(interaction: discord.Interaction, error: BaseException) -> None:
    """Tell the member, ephemerally, whatever state the interaction is in."""
    if expected(error):
        log.info("refused %s for user %s: %s", _what(interaction), interaction.user.id, error)
    else:
        log.error("error in %s for user %s", _what(interaction), interaction.user.id, exc_info=error)
    text = explain(error)
    if interaction.type == discord.InteractionType.autocomplete:
        return  # autocomplete can only offer choices; the member simply sees none
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(text, ephemeral=True)
            return
        if interaction.extras.get("public_defer"):
            # A public "thinking…" message would show the error to everyone: remove it, then answer privately.
            with contextlib.suppress(discord.HTTPException):
                await interaction.delete_original_response()
            interaction.extras["public_defer"] = False
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none())
    except discord.HTTPException:
        log.warning(
            "could not tell user %s about an error in %s", interaction.user.id, _what(interaction), exc_info=True
        )


def _what(interaction: discord.Interaction) -> str:
    if interaction.command is not None:
        return f"/{interaction.command.qualified_name}"
    data: dict[str, Any] = dict(interaction.data or {})
    return str(data.get("custom_id") or interaction.type.name)
