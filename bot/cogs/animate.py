"""/animate: a prompt becomes a short clip, queued, limited and delivered exactly like /imagine's images.

The only differences are in the spec: `kind="clip"`, frames and fps, MP4 or GIF. The model must be a clip model
(one a worker advertises with kind "clip"); with none named, the worker runs the registry's default clip model.
Inline flags work as they do for /imagine (`--seed 42 --no trees --steps 30 --cfg 7 --model NAME`), except the
ones that make no sense for one clip (`--ar`, `--count`). The worker posts the clip with 🔄 re-roll, ℹ️ info and
🗑️ delete; reactions 🔄 and ❌ work on it too (`bot.cogs.results`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import checks
from bot import flags as flag_parser
from bot.errors import Refusal
from bot.jobs import InteractionOrigin, defer_public
from imagine.contract import MAX_SEED, JobSpec

if TYPE_CHECKING:
    from bot.client import ImagineBot

log = logging.getLogger(__name__)

FORMAT_CHOICES = [
    app_commands.Choice(name="MP4 (plays inline everywhere)", value="mp4"),
    app_commands.Choice(name="GIF", value="gif"),
]


async def clip_models(bot: ImagineBot) -> dict[str, Any]:
    """The clip models workers advertise, by name."""
    return {name: info for name, info in (await bot.store.models()).items() if info.kind == "clip"}


async def clip_spec(bot: ImagineBot, text: str, options: Mapping[str, Any]) -> JobSpec:
    """A validated clip spec from the prompt (with its flags) and the command's options; flags win over options."""
    parsed = flag_parser.parse(text)
    for flag, spelled in (("aspect", "--ar"), ("count", "--count")):
        if flag in parsed.fields:
            raise Refusal(f"`{spelled}` is for images; a clip keeps its model's size and comes one at a time.")
    fields = {k: v for k, v in options.items() if v is not None}
    negatives = [n for n in (fields.pop("negative", None), parsed.fields.pop("negative", None)) if n]
    fields.update(parsed.fields)
    data: dict[str, Any] = {"kind": "clip", "prompt": parsed.prompt, "negative_prompt": ", ".join(negatives)}
    for key in ("seed", "steps", "guidance", "sampler", "frames", "fps"):
        if fields.get(key) is not None:
            data[key] = fields[key]
    if fields.get("format"):
        data["clip_format"] = fields["format"]
    name = fields.get("model")
    if name:
        models = await clip_models(bot)
        everything = await bot.store.models()
        if everything and name not in models:
            listed = ", ".join(sorted(models)) or "none yet"
            raise Refusal(f"`{name[:40]}` is not a clip model; choose one of {listed}.")
        data["model"] = name
    return JobSpec.parse(data, bot.settings.limits())


class Animate(commands.Cog):
    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot

    @app_commands.command(name="animate")
    @app_commands.describe(
        prompt="What to animate, e.g. a red circle moving right on a blue background. Flags: --seed --no --steps --cfg",
        negative="What to leave out",
        frames="How many frames (the model's default if left out)",
        fps="Playback speed in frames per second (the model's default if left out)",
        seed="The same seed and parameters give the same clip",
        steps="Denoising steps: more is slower and often finer",
        guidance="How closely to follow the prompt (classifier-free guidance)",
        model="Which clip model makes it",
        format="MP4 (the default) or GIF",
    )
    @app_commands.choices(format=FORMAT_CHOICES)
    @app_commands.guild_only()
    @checks.in_guild()
    async def animate(
        self,
        interaction: discord.Interaction,
        prompt: app_commands.Range[str, 1, 1500],
        negative: app_commands.Range[str, 1, 1000] | None = None,
        frames: app_commands.Range[int, 2, 120] | None = None,
        fps: app_commands.Range[int, 1, 60] | None = None,
        seed: app_commands.Range[int, 0, MAX_SEED] | None = None,
        steps: app_commands.Range[int, 1, 500] | None = None,
        guidance: app_commands.Range[float, 0.0, 100.0] | None = None,
        model: str | None = None,
        format: str | None = None,
    ) -> None:
        """Turn a prompt into a short clip."""
        message_id = await defer_public(interaction)
        options = {
            "negative": negative,
            "frames": frames,
            "fps": fps,
            "seed": seed,
            "steps": steps,
            "guidance": guidance,
            "model": model,
            "format": format,
        }
        spec = await clip_spec(self.bot, prompt, options)
        await self.bot.jobs.submit(spec, InteractionOrigin(interaction, message_id))

    @animate.autocomplete("model")
    async def _model_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        current = current.lower().strip()
        models = await clip_models(self.bot)
        return [
            app_commands.Choice(name=f"{m.name} — {m.description}"[:100], value=m.name)
            for m in sorted(models.values(), key=lambda m: m.name)
            if current in m.name.lower()
        ][:25]


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(Animate(bot))
