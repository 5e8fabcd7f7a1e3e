"""In-process fixtures for the front end: the fake Discord and the real bot in the test's event loop, a real
Redis, and a worker context (tiny model, loaded once per session) whose jobs run in a thread on demand.

Faster than the process-level tests in tests/e2e, and the same code paths: discord.py's own parsers, command tree
and HTTP client on the bot side; the worker's real job function and REST client on the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import redis
from redis.asyncio import Redis as AsyncRedis

from imagine import keys
from imagine.settings import Settings
from tests.helpers import make_settings
from tests.support.scenario import FakeDiscord, Scene

TINY_ONLY = """\
default = "tiny"

[models.tiny]
description = "tiny random test pipeline"
source = "tiny"
nsfw = "allow"  # random weights: noise, and no safety checker to screen it
family = "sd"
width = 32
height = 32
steps = 2
guidance = 4.0
sampler = "dpm++_2m"
display_scale = 4
"""


@pytest.fixture(scope="session")
def tiny_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("front") / "registry.toml"
    path.write_text(TINY_ONLY)
    return path


@pytest.fixture(scope="session")
def base_ctx(redis_server: str, data_dir: Path, tiny_dir: Path, tiny_registry: Path) -> Iterator[Any]:
    """A worker context with the tiny pipeline resident, shared by the session (tests swap its settings)."""
    from worker.context import WorkerContext

    client = redis.Redis.from_url(redis_server)
    ctx = WorkerContext.create(
        make_settings(redis_server, data_dir, registry_file=tiny_registry), client, name="front-test-worker"
    )
    ctx.pipelines.get(ctx.registry.resolve("tiny", data_dir))
    yield ctx
    client.close()


def burst(ctx: Any) -> bool:
    """An ImagineWorker in burst mode from a plain thread (RQ's signal handlers and SIGALRM job timeouts are for
    the main thread only; this worker stops by running out of jobs, and times jobs with a timer thread)."""
    from rq.timeouts import TimerDeathPenalty

    from worker.worker import ImagineWorker

    worker = ImagineWorker([keys.IMAGE_QUEUE], ctx=ctx)
    worker._install_signal_handlers = lambda: None  # type: ignore[method-assign]
    worker.death_penalty_class = TimerDeathPenalty  # SIGALRM is main-thread only too
    return worker.work(burst=True, logging_level="WARNING")


@dataclass
class Front:
    fake: FakeDiscord
    scene: Scene
    bot: Any
    ctx: Any
    settings: Settings
    conn: redis.Redis

    async def work(self) -> None:
        """Run every queued job in an in-process worker (in a thread, so the fake keeps serving)."""
        await asyncio.to_thread(burst, self.ctx)

    def job_of_message(self, message_id: int) -> str:
        value = self.conn.get(keys.message(message_id))
        assert value is not None, f"no job for message {message_id}"
        return value.decode()


def front_settings(
    redis_url: str, data_dir: Path, fake: FakeDiscord, scene: Scene, registry: Path, **overrides: Any
) -> Settings:
    values: dict[str, Any] = {
        "registry_file": registry,
        "discord_token": fake.token,
        "discord_api_base": fake.api_base,
        "dev_guild_id": scene.guild.id,
        "progress_interval": 0.2,
        "preview_every": 1,
        "preview_size": 32,
    }
    values.update(overrides)
    return make_settings(redis_url, data_dir, **values)


@contextlib.asynccontextmanager
async def running(settings: Settings, fake: FakeDiscord, *, sync_global: bool = False) -> AsyncIterator[Any]:
    """The real bot, connected to the fake, in this event loop."""
    from bot.client import ImagineBot

    url = settings.redis_url_value()
    assert url
    async with AsyncRedis.from_url(url) as client:
        queue_conn = redis.Redis.from_url(url)
        bot = ImagineBot(settings, client, queue_conn, sync_global=sync_global)
        task = asyncio.create_task(bot.start(fake.token))
        try:
            waiter = asyncio.create_task(fake.wait_for_bot())
            done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                waiter.cancel()
                task.result()
            await waiter
            yield bot
        finally:
            await bot.close()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            queue_conn.close()


@pytest_asyncio.fixture
async def front(
    discord_patched: FakeDiscord, redis_url: str, data_dir: Path, base_ctx: Any, tiny_registry: Path
) -> AsyncIterator[Front]:
    from worker.worker import advertise

    fake = discord_patched
    scene = await fake.default_scene()
    settings = front_settings(redis_url, data_dir, fake, scene, tiny_registry)
    ctx = dataclasses.replace(base_ctx, settings=settings)
    advertise(ctx)
    conn = redis.Redis.from_url(redis_url)
    async with running(settings, fake) as bot:
        await fake.wait_for_commands("imagine", "settings", "help", guild_id=scene.guild.id)
        yield Front(fake, scene, bot, ctx, settings, conn)
    conn.close()
