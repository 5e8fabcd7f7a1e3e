"""/help: what the bot does, with examples a member can copy."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.flags import DOCUMENTED

if TYPE_CHECKING:
    from bot.client import ImagineBot

HELP = """\
**/imagine** turns a prompt into images. Examples:
• `/imagine prompt: a red circle on the left, blue background`
• `/imagine prompt: a castle at dusk --ar 16:9 --seed 42 --no trees --steps 30 --cfg 7`
• `/imagine prompt: a green star count: 4 model: shapes`
Flags in the prompt: {flags}. They win over the command's options, which win over your /settings.

Under every result:
• **U1–U4** sends that image alone at full size · **V1–V4** makes variations of it
• 🔄 re-rolls with a new seed · ✏️ edits prompt and parameters · ℹ️ shows every parameter and seed
• 🗑️ deletes it (you, or a moderator)
The same by reaction: 🔄 re-roll, 1️⃣–4️⃣ variation of that image, ❌ delete.

**/animate** turns a prompt into a short clip (MP4, or `format: GIF`), e.g.
• `/animate prompt: a red circle moving right on a blue background frames: 8 fps: 8`
Under a clip: 🔄 re-roll · ℹ️ every parameter · 🗑️ delete (by reaction: 🔄, ❌).

**/settings** keeps your defaults (model, aspect, steps, guidance) for this server.
While you wait, your message shows its place in the queue, then the progress with a small preview."""


class Help(commands.Cog):
    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot

    @app_commands.command(name="help")
    async def help(self, interaction: discord.Interaction) -> None:
        """How to use the image bot, with examples."""
        embed = discord.Embed(
            title="Making images", description=HELP.format(flags=", ".join(f"`{f}`" for f in DOCUMENTED))
        )
        await interaction.response.send_message(embed=embed, ephemeral=True)


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(Help(bot))
