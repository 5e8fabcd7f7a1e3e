"""Fixtures for the fake Discord's own tests: the fake, a default scene, discord.py pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import discord
import pytest_asyncio

from tests.support.fixtures import discord_patched, fake_discord  # noqa: F401
from tests.support.scenario import FakeDiscord, Scene


@pytest_asyncio.fixture
async def fake(discord_patched: FakeDiscord) -> FakeDiscord:  # noqa: F811
    return discord_patched


@pytest_asyncio.fixture
async def scene(fake: FakeDiscord) -> Scene:
    return await fake.default_scene()


@pytest_asyncio.fixture
async def http(fake: FakeDiscord) -> AsyncIterator[discord.http.HTTPClient]:
    """discord.py's own REST client, logged in to the fake (no gateway)."""
    import asyncio

    client = discord.http.HTTPClient(asyncio.get_running_loop())
    await client.static_login(fake.token)
    yield client
    await client.close()
