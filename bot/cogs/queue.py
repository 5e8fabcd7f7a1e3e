"""Members and their own jobs: `/queue` shows them with their places, `/cancel` cancels one, and a ❌ reaction on a
job's pending message cancels it too (the requester's own, or anyone's for a moderator).

A ❌ on a finished result deletes it (`bot.cogs.results`); on a message still waiting it cancels the job, so no
worker ever draws it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import backlog, checks
from bot.errors import Refusal
from imagine import fair, moderation, ui, waiting

if TYPE_CHECKING:
    from bot.client import ImagineBot

log = logging.getLogger(__name__)


class MemberQueue(commands.Cog):
    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot

    @app_commands.command(name="queue")
    @app_commands.guild_only()
    @checks.in_guild()
    async def queue(self, interaction: discord.Interaction) -> None:
        """Your jobs on this server and their places in the queue."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.guild_id is not None
        jobs = await backlog.jobs_of(self.bot, interaction.guild_id, interaction.user.id)
        paused = await asyncio.to_thread(fair.is_paused, self.bot.queue_conn, interaction.guild_id)
        note = "\n-# The moderators have paused the queue here; your jobs wait until they resume it." if paused else ""
        text = backlog.listing(jobs, who=False, empty="You have no jobs waiting or running here.", title="Your jobs:")
        await interaction.followup.send(text + note, ephemeral=True, allowed_mentions=discord.AllowedMentions.none())

    @app_commands.command(name="cancel")
    @app_commands.describe(job="Which of your waiting jobs (leave empty for the latest)")
    @app_commands.guild_only()
    @checks.in_guild()
    async def cancel(self, interaction: discord.Interaction, job: str | None = None) -> None:
        """Cancel one of your waiting jobs."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.guild_id is not None
        jobs = await backlog.jobs_of(self.bot, interaction.guild_id, interaction.user.id)
        if job:
            found = waiting.find(jobs, job)
        else:
            found = min((j for j in jobs if j.state != "running"), key=lambda j: j.age_s, default=None)
        if found is None:
            raise Refusal("you have no such job waiting here (see /queue).")
        outcome = await backlog.cancel(self.bot, found, "cancelled")
        if outcome == "running":
            raise Refusal("that job is already being drawn; it cannot be stopped now.")
        if outcome != "cancelled":
            raise Refusal("that job is no longer waiting.")
        await interaction.followup.send(
            f"Cancelled *{ui.short(found.prompt, 100)}*.",
            ephemeral=True,
            allowed_mentions=discord.AllowedMentions.none(),
        )

    @cancel.autocomplete("job")
    async def _cancel_autocomplete(self, interaction: discord.Interaction, current: str) -> list[Any]:
        if interaction.guild_id is None:
            return []
        jobs = await backlog.jobs_of(self.bot, interaction.guild_id, interaction.user.id)
        return backlog.choices(jobs, current, who=False)

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        """❌ on a pending status message: cancel that job (the requester, or a moderator)."""
        if str(payload.emoji) != ui.REACTION_DELETE or payload.guild_id is None or payload.member is None:
            return
        # Status messages are the bot's own: a reaction on anyone else's costs no look in Redis.
        me = self.bot.user
        if me is None or payload.message_author_id != me.id or payload.user_id == me.id:
            return
        job_id = await self.bot.store.job_for_message(payload.message_id)
        if job_id is None:
            return
        jobs = await backlog.jobs_of(self.bot, payload.guild_id)
        found = next((j for j in jobs if j.job_id == job_id and j.state != "running"), None)
        if found is None:
            return  # a finished result (the results cog deletes it), or already running
        if found.user_id != payload.user_id and not await self._moderates(payload):
            log.info("user %s may not cancel job %s by reaction", payload.user_id, job_id)
            return
        own = found.user_id == payload.user_id
        outcome = await backlog.cancel(self.bot, found, "cancelled" if own else "cancelled by a moderator")
        if outcome == "cancelled" and not own:
            detail = f"job {job_id} of <@{found.user_id}> (by reaction)"
            await asyncio.to_thread(
                moderation.record, self.bot.queue_conn, payload.guild_id, payload.user_id, "cancelled", detail
            )
        log.info("job %s by reaction of user %s: %s", job_id, payload.user_id, outcome)

    async def _moderates(self, payload: discord.RawReactionActionEvent) -> bool:
        member = payload.member
        assert member is not None
        channel = self.bot.get_channel(payload.channel_id)
        permissions = (
            channel.permissions_for(member)
            if isinstance(channel, discord.abc.GuildChannel)
            else member.guild_permissions
        )
        return await checks.member_moderates(self.bot, payload.guild_id, member, permissions)


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(MemberQueue(bot))
