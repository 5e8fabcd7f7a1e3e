"""/settings: a member's own defaults (model, aspect, steps, guidance), per server, kept in Redis."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import checks
from bot.cogs.generation import ASPECT_CHOICES, model_choices
from bot.errors import Refusal

if TYPE_CHECKING:
    from bot.client import ImagineBot

log = logging.getLogger(__name__)


def describe(defaults: dict[str, Any]) -> str:
    if not defaults:
        return "You have no defaults here: each model's own are used."
    order = ("model", "aspect", "steps", "guidance")
    lines = [
        f"**{name}**: {defaults[name]:g}" if isinstance(defaults[name], float) else f"**{name}**: {defaults[name]}"
        for name in order
        if name in defaults
    ]
    return "Your defaults here (flags and options still win):\n" + "\n".join(lines)


class Preferences(commands.Cog):
    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot

    @app_commands.command(name="settings")
    @app_commands.describe(
        model="Model used when you do not name one",
        aspect="Shape used when you do not give one",
        steps="Steps used when you do not give them",
        guidance="Guidance used when you do not give it",
        reset="Forget all your defaults",
    )
    @app_commands.choices(aspect=ASPECT_CHOICES)
    @app_commands.guild_only()
    @checks.in_guild()
    async def settings(
        self,
        interaction: discord.Interaction,
        model: str | None = None,
        aspect: str | None = None,
        steps: app_commands.Range[int, 1, 500] | None = None,
        guidance: app_commands.Range[float, 0.0, 100.0] | None = None,
        reset: bool = False,
    ) -> None:
        """Show or change your defaults for /imagine."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        store, limits = self.bot.store, self.bot.settings.limits()
        if reset:
            await store.clear_member_defaults(interaction.guild_id, interaction.user.id)
        changes: dict[str, Any] = {"model": model, "aspect": aspect, "steps": steps, "guidance": guidance}
        changes = {k: v for k, v in changes.items() if v is not None}
        if "model" in changes:
            models = await store.models()
            if models and changes["model"] not in models:
                raise Refusal(
                    f"there is no model called `{changes['model'][:40]}`; choose one of {', '.join(sorted(models))}."
                )
        if "steps" in changes and changes["steps"] > limits.max_steps:
            raise Refusal(f"steps must be at most {limits.max_steps} here.")
        if "guidance" in changes and changes["guidance"] > limits.max_guidance:
            raise Refusal(f"guidance must be at most {limits.max_guidance:g} here.")
        await store.set_member_defaults(interaction.guild_id, interaction.user.id, changes)
        defaults = await store.member_defaults(interaction.guild_id, interaction.user.id)
        await interaction.followup.send(describe(defaults), ephemeral=True)

    @settings.autocomplete("model")
    async def _model_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await model_choices(self.bot, current)


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(Preferences(bot))
