"""A minimal discord.py bot for exercising the fake through discord.py's real code paths."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import discord
from discord.ext import commands

from tests.support.scenario import FakeDiscord, Scene


class MiniBot(commands.Bot):
    """Syncs its tree to the test server in setup_hook, as a development-guild bot does."""

    def __init__(self, guild_id: int, intents: discord.Intents | None = None) -> None:
        super().__init__(command_prefix=commands.when_mentioned, intents=intents or discord.Intents.default())
        self.guild_id = guild_id
        self.seen: list[object] = []
        self.errors: list[BaseException] = []

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """No 5-second pause before re-identifying (Discord's identify rate limit is not modelled)."""

    async def setup_hook(self) -> None:
        guild = discord.Object(self.guild_id)
        self.tree.copy_global_to(guild=guild)
        await self.tree.sync(guild=guild)


@contextlib.asynccontextmanager
async def running_bot(
    fake: FakeDiscord, scene: Scene, setup: Callable[[MiniBot], None], intents: discord.Intents | None = None
) -> AsyncIterator[MiniBot]:
    """Start a MiniBot (after `setup(bot)` adds commands and listeners), wait until it is connected, stop it."""
    bot = MiniBot(scene.guild.id, intents)
    setup(bot)
    task = asyncio.create_task(bot.start(fake.token))
    try:
        waiter = asyncio.create_task(fake.wait_for_bot())
        done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            waiter.cancel()
            task.result()  # raises the bot's start-up error
        await waiter
        yield bot
    finally:
        await bot.close()
        with contextlib.suppress(asyncio.CancelledError):
            await task
