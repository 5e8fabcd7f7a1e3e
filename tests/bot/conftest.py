"""Fixtures for the bot's tests (the fake Discord's own, and the in-process front end)."""

from tests.bot.fixtures import base_ctx, front, tiny_registry  # noqa: F401
from tests.support.fixtures import discord_patched, fake_discord  # noqa: F401
