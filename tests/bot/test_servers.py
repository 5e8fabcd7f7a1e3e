"""The bot leaving a server and coming back, over the fake gateway: the leave is noted for the purge, a rejoin
within the grace takes it back, and the purge forgets the server (`imagine.retention`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from imagine import keys, limits
from tests.bot.fixtures import Front

pytestmark = pytest.mark.asyncio


async def until(check: Callable[[], bool], what: str) -> None:
    for _ in range(100):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_leaving_then_rejoining_keeps_the_servers_data_and_a_purge_forgets_it(front: Front) -> None:
    gateway, guild_id = front.fake.gateway, front.scene.guild.id
    limits.store(front.conn, guild_id, "member_active", 2)
    await gateway.dispatch("GUILD_DELETE", {"id": str(guild_id)}, guild_id=guild_id)
    await until(lambda: front.conn.zscore(keys.LEFT_GUILDS, str(guild_id)) is not None, "the leave to be noted")
    for session in gateway.live_sessions():
        await gateway._send_event(session, "GUILD_CREATE", gateway._guild_create(session, guild_id))
    await until(lambda: front.conn.zscore(keys.LEFT_GUILDS, str(guild_id)) is None, "the rejoin to be noted")
    servers = front.bot.get_cog("Servers")
    assert await servers.sweep() == []
    assert limits.load(front.conn, guild_id, front.settings).member_active == 2  # kept

    await gateway.dispatch("GUILD_DELETE", {"id": str(guild_id)}, guild_id=guild_id)
    await until(lambda: front.conn.zscore(keys.LEFT_GUILDS, str(guild_id)) is not None, "the second leave")
    front.conn.zadd(keys.LEFT_GUILDS, {str(guild_id): 0})  # as if the grace had passed
    assert await servers.sweep() == [guild_id]
    assert not front.conn.exists(keys.guild(guild_id, "limits"))


async def test_a_server_left_while_the_bot_was_offline_is_noticed_at_start(front: Front) -> None:
    guild_id = front.scene.guild.id
    await until(lambda: front.conn.sismember(keys.IN_GUILDS, str(guild_id)), "the server to be noted as joined")
    front.conn.sadd(keys.IN_GUILDS, "4242")  # the bot was in it before, and was removed while offline
    servers = front.bot.get_cog("Servers")
    assert await servers.reconcile() == [4242]
    assert front.conn.zscore(keys.LEFT_GUILDS, "4242") is not None
    assert front.conn.zscore(keys.LEFT_GUILDS, str(guild_id)) is None  # the bot is still in this one
    assert not front.conn.sismember(keys.IN_GUILDS, "4242")
