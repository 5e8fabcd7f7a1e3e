"""The bot: a `commands.Bot` that is handed its settings and Redis connections, and loads one cog per concern.

Commands are synced to the development server at every start when one is configured (they show at once there).
Without one, global commands are synced on deploy: when their hash differs from the last sync's (bot/sync.py),
never on every start; `imagine bot --sync-global` syncs them in any case.
"""

from __future__ import annotations

import logging

import discord
import redis
from discord import app_commands
from discord.ext import commands
from redis.asyncio import Redis as AsyncRedis

from bot import errors, sync
from bot.jobs import Submitter
from bot.store import Store
from imagine.settings import Settings

log = logging.getLogger(__name__)

EXTENSIONS = (
    "bot.cogs.generation",
    "bot.cogs.animate",
    "bot.cogs.results",
    "bot.cogs.preferences",
    "bot.cogs.help",
    "bot.cogs.queue",
    "bot.cogs.moderation",
    "bot.cogs.servers",
)


def intents() -> discord.Intents:
    """Only what the bot uses: servers and channels, and reactions on messages. No privileged intent."""
    wanted = discord.Intents.none()
    wanted.guilds = True
    wanted.guild_reactions = True
    return wanted


class ImagineTree(app_commands.CommandTree):
    """The command tree, with the one error map for every slash command and autocomplete."""

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        await errors.answer(interaction, error)


class ImagineBot(commands.Bot):
    def __init__(
        self,
        settings: Settings,
        redis_client: AsyncRedis,
        queue_conn: redis.Redis,
        *,
        sync_global: bool = False,
    ) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents(),
            help_command=None,
            tree_cls=ImagineTree,
            # Nothing the bot says pings anyone unless a message says otherwise (the late fallback, in the worker).
            allowed_mentions=discord.AllowedMentions.none(),
        )
        self.settings = settings
        self.redis = redis_client
        self.queue_conn = queue_conn
        self.sync_global = sync_global
        self.store = Store(redis_client, settings)
        self.jobs = Submitter(self)

    async def setup_hook(self) -> None:
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        if self.settings.dev_guild_id:
            guild = discord.Object(self.settings.dev_guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            log.info("synced %d commands to the development server %s", len(synced), guild.id)
        if self.sync_global or not self.settings.dev_guild_id:
            assert self.application_id is not None  # set by login, before setup_hook
            await sync.sync_global_if_changed(self.tree, self.redis, self.application_id, force=self.sync_global)

    async def on_ready(self) -> None:
        log.info("logged in as %s (%s) in %d servers", self.user, getattr(self.user, "id", "?"), len(self.guilds))
