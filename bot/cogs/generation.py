"""/imagine: defer at once, then parse flags, apply defaults, validate and enqueue; the worker does the rest.

Autocomplete for `model` and `sampler` reads the models workers publish in Redis (the bot never loads a model).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot import attachments, checks, gate
from bot.jobs import InteractionOrigin, defer_public
from imagine.contract import MAX_SEED, SAMPLER_LABELS, SAMPLERS, JobSpec

if TYPE_CHECKING:
    from bot.client import ImagineBot

log = logging.getLogger(__name__)

ASPECTS = ["1:1", "4:3", "3:4", "3:2", "2:3", "16:9", "9:16", "21:9"]
ASPECT_CHOICES = [app_commands.Choice(name=a, value=a) for a in ASPECTS]


async def model_choices(bot: ImagineBot, current: str, kind: str | None = None) -> list[app_commands.Choice[str]]:
    models = await bot.store.models()
    current = current.lower().strip()
    ordered = sorted(models.values(), key=lambda m: (not m.default, m.name))
    found = [m for m in ordered if current in m.name.lower() and kind in (None, m.kind)]
    return [
        app_commands.Choice(name=f"{m.name}{' (default)' if m.default else ''} — {m.description}"[:100], value=m.name)
        for m in found[:25]
    ]


def sampler_choices(current: str) -> list[app_commands.Choice[str]]:
    current = current.lower().strip()
    return [
        app_commands.Choice(name=SAMPLER_LABELS[s], value=s)
        for s in SAMPLERS
        if current in s or current in SAMPLER_LABELS[s].lower()
    ][:25]


class Generation(commands.Cog):
    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot

    @app_commands.command(name="imagine")
    @app_commands.describe(
        prompt="What to draw. Inline flags work too: --ar 16:9 --seed 42 --no trees --steps 30 --cfg 7 --model NAME",
        negative="What to leave out of the picture",
        count="How many images, 1-4 (four make a 2x2 grid)",
        seed="Seed of the first image; the same seed and parameters give the same picture",
        steps="Denoising steps: more is slower and often finer",
        guidance="How closely to follow the prompt (classifier-free guidance)",
        aspect="Shape of the picture",
        model="Which model draws it",
        sampler="Which sampler (scheduler) denoises",
        image="A picture to start from (image-to-image): PNG, JPEG or WebP, a still, at most 10 MB",
    )
    @app_commands.choices(aspect=ASPECT_CHOICES)
    @app_commands.guild_only()
    @checks.in_guild()
    async def imagine(
        self,
        interaction: discord.Interaction,
        prompt: app_commands.Range[str, 1, 1500],
        negative: app_commands.Range[str, 1, 1000] | None = None,
        count: app_commands.Range[int, 1, 4] | None = None,
        seed: app_commands.Range[int, 0, MAX_SEED] | None = None,
        steps: app_commands.Range[int, 1, 500] | None = None,
        guidance: app_commands.Range[float, 0.0, 100.0] | None = None,
        aspect: str | None = None,
        model: str | None = None,
        sampler: str | None = None,
        image: discord.Attachment | None = None,
    ) -> None:
        """Turn a prompt into images."""
        message_id = await defer_public(interaction)
        options = {
            "negative": negative,
            "count": count,
            "seed": seed,
            "steps": steps,
            "guidance": guidance,
            "aspect": aspect,
            "model": model,
            "sampler": sampler,
        }
        spec = await self.bot.jobs.spec_from_request(
            guild_id=interaction.guild_id, user_id=interaction.user.id, text=prompt, options=options
        )
        origin = InteractionOrigin(interaction, message_id, what="/imagine")
        if image is not None:
            # The server's rules before the file is downloaded, decoded or stored (submit checks them again).
            await gate.admit(self.bot, spec, user=interaction.user, what=origin.what, **origin.where())
            init = await attachments.init_image(
                self.bot, image, guild_id=interaction.guild_id, user_id=interaction.user.id
            )
            spec = JobSpec.parse({**spec.payload(), "init_image": init.model_dump()}, self.bot.settings.limits())
        await self.bot.jobs.submit(spec, origin)

    @imagine.autocomplete("model")
    async def _model_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await model_choices(self.bot, current, kind="image")  # clip models are /animate's

    @imagine.autocomplete("sampler")
    async def _sampler_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return sampler_choices(current)


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(Generation(bot))
