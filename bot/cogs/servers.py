"""The servers the bot is in: when it leaves one (or, seen at start-up, was removed while offline), that server's
data is purged after a grace period; a rejoin within the grace keeps it (`imagine.retention`). A background task
runs the purge every `SWEEP_S` seconds."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import discord
import redis
from discord.ext import commands

from imagine import retention

if TYPE_CHECKING:
    from bot.client import ImagineBot

log = logging.getLogger(__name__)

#: Seconds between two purges of servers left longer than the grace ago.
SWEEP_S = 600.0


class Servers(commands.Cog):
    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot
        self.sweeper: asyncio.Task[None] | None = None

    async def cog_load(self) -> None:
        self.sweeper = asyncio.create_task(self._sweep_forever(), name="servers-purge")

    async def cog_unload(self) -> None:
        if self.sweeper is not None:
            self.sweeper.cancel()
            self.sweeper = None

    @commands.Cog.listener()
    async def on_guild_remove(self, guild: discord.Guild) -> None:
        await asyncio.to_thread(retention.left, self.bot.queue_conn, guild.id)
        log.info("left server %s; its data goes in %d s unless the bot is invited back", guild.id, self.grace)

    @commands.Cog.listener()
    async def on_guild_join(self, guild: discord.Guild) -> None:
        if await asyncio.to_thread(retention.rejoined, self.bot.queue_conn, guild.id):
            log.info("back in server %s within the grace: its settings are kept", guild.id)

    @commands.Cog.listener()
    async def on_guild_available(self, guild: discord.Guild) -> None:
        """A server seen again (at start-up, or a GUILD_CREATE marked available) is one the bot is in."""
        await self.on_guild_join(guild)

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        """Servers the bot was in before and is not now were left while it was offline: their grace starts now."""
        await self.reconcile()

    async def reconcile(self) -> list[int]:
        present = {guild.id for guild in self.bot.guilds}
        gone = await asyncio.to_thread(retention.reconcile, self.bot.queue_conn, present)
        for guild_id in gone:
            log.info("not in server %s any more (left while offline); its data goes in %d s", guild_id, self.grace)
        return gone

    @property
    def grace(self) -> int:
        return int(self.bot.settings.guild_grace)

    async def sweep(self) -> list[int]:
        """Purge the servers left longer than the grace ago; their ids."""
        return await asyncio.to_thread(retention.purge_due, self.bot.queue_conn, self.grace)

    async def _sweep_forever(self) -> None:
        while True:
            try:
                await self.sweep()
            except redis.RedisError as exc:  # Redis away for a moment: the next sweep tries again
                log.warning("purge of left servers failed: %s", exc)
            await asyncio.sleep(SWEEP_S)


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(Servers(bot))
