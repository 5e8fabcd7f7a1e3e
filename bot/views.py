"""The buttons under a result and the remix form.

Buttons are persistent: the worker posts them (ids from `imagine.ui`), and these `DynamicItem`s read the action,
job and image number back out of the custom id whenever one is pressed, so a press works after a restart of the
bot. What each press does lives in `bot.actions`; errors go to the one error map.
"""

from __future__ import annotations

import logging
import math
import re
from typing import TYPE_CHECKING, Any, ClassVar, cast

import discord

from bot import actions, checks, errors, gate
from bot.flags import format_flags
from bot.jobs import InteractionOrigin, defer_public
from bot.store import JobRecord
from imagine import ui

if TYPE_CHECKING:
    from bot.client import ImagineBot

log = logging.getLogger(__name__)


async def on_press(interaction: discord.Interaction, action: str, job_id: str, index: int | None) -> None:
    """Dispatch one button press; every error becomes one ephemeral line."""
    bot = cast("ImagineBot", interaction.client)
    try:
        if action == ui.REMIX:
            record = await actions.record_or_gone(bot, job_id, interaction.guild_id, interaction.user.id)
            origin = InteractionOrigin(interaction, 0, what="the remix button")
            await gate.admit(bot, record.spec, user=interaction.user, what=origin.what, **origin.where())
            await interaction.response.send_modal(RemixModal(record))
        elif action == ui.DELETE:
            record = await actions.record_or_gone(bot, job_id, interaction.guild_id, interaction.user.id)
            checks.ensure_may_delete(record.user_id, interaction.user, interaction.permissions)
            await interaction.response.defer()
            assert interaction.message is not None
            await actions.delete(bot, record, interaction.message, interaction.user, interaction.permissions)
        elif action == ui.INFO:
            await interaction.response.defer(ephemeral=True, thinking=True)
            record = await actions.record_or_gone(bot, job_id, interaction.guild_id, interaction.user.id)
            await actions.info(interaction, record)
        else:
            message_id = await defer_public(interaction)
            record = await actions.record_or_gone(bot, job_id, interaction.guild_id, interaction.user.id)
            assert index is not None or action == ui.REROLL
            if action == ui.UPSCALE:
                await actions.upscale(bot, interaction, record, cast(int, index))
            elif action == ui.VARY:
                origin = InteractionOrigin(interaction, message_id, what=f"the V{index} button")
                await actions.vary(bot, record, cast(int, index), origin, interaction.message)
            else:
                await actions.reroll(bot, record, InteractionOrigin(interaction, message_id, what="the re-roll button"))
    except Exception as exc:
        await errors.answer(interaction, exc)


class ImageButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=ui.INDEXED_TEMPLATE):
    """U1-U4 and V1-V4: `imagine:<u|v>:<job>:<n>`."""

    def __init__(self, action: str, job_id: str, index: int) -> None:
        super().__init__(
            discord.ui.Button(label=f"{action.upper()}{index}", custom_id=ui.custom_id(action, job_id, index))
        )
        self.action, self.job_id, self.index = action, job_id, index

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> ImageButton:
        return cls(match["action"], match["job"], int(match["index"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await on_press(interaction, self.action, self.job_id, self.index)


class JobButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=ui.PLAIN_TEMPLATE):
    """🔄 re-roll, ✏️ remix, ℹ️ info, 🗑️ delete: `imagine:<r|e|i|d>:<job>`."""

    EMOJI: ClassVar[dict[str, str]] = {ui.REROLL: "🔄", ui.REMIX: "✏️", ui.INFO: "ℹ️", ui.DELETE: "🗑️"}

    def __init__(self, action: str, job_id: str) -> None:
        super().__init__(discord.ui.Button(emoji=self.EMOJI.get(action), custom_id=ui.custom_id(action, job_id)))
        self.action, self.job_id = action, job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> JobButton:
        return cls(match["action"], match["job"])

    async def callback(self, interaction: discord.Interaction) -> None:
        await on_press(interaction, self.action, self.job_id, None)


def parameters_of(record: JobRecord) -> str:
    """A job's parameters as inline flags, for the remix form to edit."""
    spec = record.best
    fields: dict[str, Any] = {
        "seed": spec.seed,
        "steps": spec.steps,
        "guidance": spec.guidance,
        "model": spec.model,
        "sampler": spec.sampler,
    }
    if spec.count != 1:
        fields["count"] = spec.count
    if spec.width and spec.height:
        g = math.gcd(spec.width, spec.height)
        fields["aspect"] = (spec.width // g, spec.height // g)
    return format_flags(fields)


class RemixModal(discord.ui.Modal):
    """✏️: the prompt and parameters, editable; submitting starts a new job for the member who pressed."""

    def __init__(self, record: JobRecord) -> None:
        super().__init__(title="Remix", timeout=15 * 60, custom_id=f"{ui.PREFIX}:remix:{record.job_id}")
        spec = record.best
        self.record = record
        self.prompt: discord.ui.TextInput[RemixModal] = discord.ui.TextInput(
            label="Prompt", style=discord.TextStyle.paragraph, default=spec.prompt[:1000], max_length=1000
        )
        self.negative: discord.ui.TextInput[RemixModal] = discord.ui.TextInput(
            label="Leave out (negative prompt)",
            default=spec.negative_prompt[:400] or None,
            required=False,
            max_length=400,
        )
        self.parameters: discord.ui.TextInput[RemixModal] = discord.ui.TextInput(
            label="Parameters",
            default=parameters_of(record)[:200] or None,
            required=False,
            max_length=200,
            placeholder="--ar 16:9 --seed 42 --steps 30 --cfg 7 --model NAME",
        )
        for item in (self.prompt, self.negative, self.parameters):
            self.add_item(item)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        bot = cast("ImagineBot", interaction.client)
        message_id = await defer_public(interaction)
        spec = await bot.jobs.spec_from_request(
            guild_id=interaction.guild_id,
            user_id=interaction.user.id,
            text=f"{self.prompt.value} {self.parameters.value or ''}",
            options={"negative": self.negative.value or None},
        )
        if self.record.spec.init_image is not None:  # a remix of a variation stays a variation of the same source
            spec = bot.jobs.again(spec, seed=spec.seed, init_image=self.record.spec.init_image.model_dump())
        await bot.jobs.submit(spec, InteractionOrigin(interaction, message_id, what="the remix form"))

    async def on_error(self, interaction: discord.Interaction, error: Exception, /) -> None:  # type: ignore[override]
        await errors.answer(interaction, error)
