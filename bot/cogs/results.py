"""What happens under a result: the persistent buttons (registered here) and the same actions by reaction.

Reactions: 🔄 re-roll, 1️⃣-4️⃣ a variation of that image, ❌ delete (requester or moderator). They arrive as raw
events, so they work on messages the bot has never cached, posted before its last restart. Only reactions on
the bot's own messages are looked at (`message_author_id`), so reactions elsewhere cost no Redis reads.

A reaction cannot be answered privately, so a refused one gets no answer at all: it is logged (and, when it
looks like probing, noted in the moderator log by `bot.gate`), and the server's rules are checked before any
status message is posted, so nothing appears in the channel. A public reply would tell the channel that the
member is blocked or over a limit, and would let anyone make the bot post by reacting; a DM is intrusive, often
refused (an error request that counts towards Discord's invalid-request limit), and unasked for.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from bot import actions, errors
from bot.jobs import ChannelOrigin
from bot.views import ImageButton, JobButton
from imagine import ui

if TYPE_CHECKING:
    from bot.client import ImagineBot

log = logging.getLogger(__name__)

LINK_LAG_RETRIES = (0.1, 0.2, 0.4, 0.8, 1.5)
"""Seconds between looks for a fresh result's record (3 s in all)."""

HANDLED = {ui.REACTION_REROLL, ui.REACTION_DELETE, *ui.REACTION_VARY}


class Results(commands.Cog):
    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(ImageButton, JobButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(ImageButton, JobButton)

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        emoji = str(payload.emoji)
        if emoji not in HANDLED or payload.guild_id is None or payload.member is None or self.bot.user is None:
            return
        # Only results are acted on, and results are the bot's own messages: every other message (a member's,
        # another bot's) costs nothing, not even a look in Redis.
        if payload.message_author_id != self.bot.user.id or payload.user_id == self.bot.user.id:
            return
        record = await self._result_for(payload.message_id)
        if record is None:
            return  # not a finished result (a pending status message, an expired job)
        owner = record.spec.requester.guild_id if record.spec.requester else None
        if owner != payload.guild_id:  # a result of another server, forwarded or linked here: not ours to act on
            log.info("reaction %s by user %s on a result of server %s ignored", emoji, payload.user_id, owner)
            return
        try:
            await self._act(emoji, record, payload)
        except Exception as exc:
            if errors.expected(exc):
                log.info("reaction %s by user %s refused: %s", emoji, payload.user_id, errors.explain(exc))
            else:
                log.error("reaction %s by user %s failed", emoji, payload.user_id, exc_info=exc)

    async def _result_for(self, message_id: int) -> actions.JobRecord | None:
        """The finished job whose result is this message. The worker records where a result went just after
        posting it (and a result that answers a slash command replaces the job's status message, which is linked
        to the job from the start), so a reaction can arrive first: a member quick on the draw, a loaded worker.
        Look again for a few seconds before deciding the message is not a result."""
        for delay in (*LINK_LAG_RETRIES, None):
            job_id = await self.bot.store.job_for_message(message_id)
            record = await self.bot.store.job(job_id) if job_id is not None else None
            if record is not None and record.message_id == message_id:
                return record
            if delay is None:
                return None
            await asyncio.sleep(delay)
        return None

    async def _act(self, emoji: str, record: actions.JobRecord, payload: discord.RawReactionActionEvent) -> None:
        member = payload.member
        assert member is not None
        guild = self.bot.get_guild(payload.guild_id or 0)
        found = self.bot.get_channel(payload.channel_id)
        channel: discord.abc.Messageable = (
            found
            if isinstance(found, discord.abc.Messageable)
            else self.bot.get_partial_messageable(payload.channel_id, guild_id=payload.guild_id)
        )
        origin = ChannelOrigin(channel, guild, member, reply_to=payload.message_id, what=f"a {emoji} reaction")
        if emoji == ui.REACTION_REROLL:
            await actions.reroll(self.bot, record, origin)
        elif emoji in ui.REACTION_VARY:
            await actions.vary(self.bot, record, ui.REACTION_VARY[emoji], origin)
        elif emoji == ui.REACTION_DELETE:
            permissions = (
                channel.permissions_for(member)
                if isinstance(channel, discord.abc.GuildChannel)
                else member.guild_permissions
            )
            message = self.bot.get_partial_messageable(payload.channel_id).get_partial_message(payload.message_id)
            await actions.delete(self.bot, record, message, member, permissions)


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(Results(bot))
