"""Fixtures for the reliability tests: `stack` (real processes around a restartable Redis and the fake Discord),
started once per session and shared by the modules that break it, one test at a time."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import redis

from imagine.redis import EmbeddedRedis
from tests.e2e.conftest import Proc
from tests.reliability.stack import REGISTRY, Stack, stack_env
from tests.support import permissions as P
from tests.support.scenario import FakeDiscord

WORKERS = 2


@pytest.fixture(scope="session")
def reliability_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("reliability") / "registry.toml"
    path.write_text(REGISTRY)
    return path


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def stack(
    data_dir: Path, tiny_dir: Path, reliability_registry: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    folder = tmp_path_factory.mktemp("reliability-redis")
    server = EmbeddedRedis(folder)
    server.start()
    conn = redis.Redis.from_url(server.url)
    log_dir = tmp_path_factory.mktemp("reliability-logs")
    holder: list[Stack] = []
    try:
        async with FakeDiscord() as fake:
            guild = await fake.create_guild("Reliability", channels=("general",))
            await fake.create_role(guild.id, "Moderator", P.MANAGE_MESSAGES)
            env = stack_env(server.url, fake, guild, data_dir, reliability_registry)
            bot = Proc("bot", [sys.executable, "-m", "imagine", "-v", "bot"], env, log_dir)
            stack = Stack(fake, guild, server, conn, env, log_dir, bot)
            holder.append(stack)
            for _ in range(WORKERS):
                stack.add_worker()
            try:
                bot.start()
                await stack.wait(lambda: any(s.connected for s in fake.gateway.live_sessions()), "the bot", 60)
                await stack.wait(lambda: "imagine" in {c.name for c in fake.commands(guild.id)}, "commands synced", 30)
                await stack.workers_ready(WORKERS)
                yield stack
            finally:
                for proc in [stack.bot, *stack.workers]:
                    with contextlib.suppress(Exception):
                        await proc.stop()
    finally:
        conn.close()
        (holder[0].server if holder else server).stop()  # a test may have restarted it


@pytest_asyncio.fixture(loop_scope="session")
async def clean(stack: Stack) -> AsyncIterator[Stack]:
    """The stack, with a check afterwards that the fake saw no request Discord would refuse."""
    stack.fake.take_errors()
    stack.fake.clear_faults()
    yield stack
    stack.fake.clear_faults()
    errors = stack.fake.take_errors()
    assert not errors, "fake Discord saw invalid requests:\n  " + "\n  ".join(errors) + "\n" + stack.logs()
