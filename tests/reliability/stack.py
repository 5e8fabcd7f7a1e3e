"""A whole deployment to break on purpose: its own Redis (restartable on a fixed port, append-only), the fake
Discord in the test's event loop, a real bot process and real worker processes, exactly as deployed.

Separate from tests/e2e's stack because these tests kill workers, crash Redis and starve Discord: nothing else must
share what they break. Heartbeats are short (a dead worker's job is retried within
`HEARTBEAT_TTL + MAINTENANCE_INTERVAL` seconds) and every job gets one retry (`JOB_RETRIES`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import redis

from imagine import keys
from imagine.redis import EmbeddedRedis
from tests.e2e.conftest import Proc
from tests.support.scenario import FakeDiscord
from tests.support.state import Guild, Interaction, Member, Message

T = TypeVar("T")

HEARTBEAT_INTERVAL = 1
HEARTBEAT_TTL = 4
MAINTENANCE_INTERVAL = 1
JOB_RETRIES = 1
#: The bound on worker death -> job back on the queue, plus slack for a loaded 2-core machine.
DETECTION_BOUND_S = HEARTBEAT_TTL + MAINTENANCE_INTERVAL

REGISTRY = """\
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


def stack_env(url: str, fake: FakeDiscord, guild: Guild, data_dir: Path, registry: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGINE_") and k != "REDIS_URL"}
    env.update(
        REDIS_URL=url,
        DISCORD_TOKEN=fake.token,
        IMAGINE_DISCORD_API_BASE=fake.api_base,
        IMAGINE_DEV_GUILD_ID=str(guild.id),
        IMAGINE_DATA_DIR=str(data_dir),
        IMAGINE_REGISTRY_FILE=str(registry),
        IMAGINE_PROGRESS_INTERVAL="0.3",
        IMAGINE_TORCH_THREADS="1",
        IMAGINE_PREVIEW_EVERY="0",
        IMAGINE_HEARTBEAT_INTERVAL=str(HEARTBEAT_INTERVAL),
        IMAGINE_HEARTBEAT_TTL=str(HEARTBEAT_TTL),
        IMAGINE_MAINTENANCE_INTERVAL=str(MAINTENANCE_INTERVAL),
        IMAGINE_JOB_RETRIES=str(JOB_RETRIES),
        HF_HUB_OFFLINE="1",
        OMP_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
    )
    return env


@dataclass
class Stack:
    fake: FakeDiscord
    guild: Guild
    server: EmbeddedRedis
    conn: redis.Redis
    env: dict[str, str]
    log_dir: Path
    bot: Proc
    workers: list[Proc] = field(default_factory=list)
    started: int = 0

    # -- processes ------------------------------------------------------------------------------------------

    def add_worker(self) -> Proc:
        self.started += 1
        argv = [sys.executable, "-m", "imagine", "-v", "worker", "--preload", "tiny"]
        proc = Proc(f"worker-{self.started}", argv, self.env, self.log_dir)
        proc.start()
        self.workers.append(proc)
        return proc

    def live_workers(self) -> list[Proc]:
        return [w for w in self.workers if w.proc is not None and w.proc.poll() is None]

    async def workers_ready(self, count: int, timeout: float = 120.0) -> None:
        """Wait until `count` live worker processes are registered with RQ and listening."""
        from rq import Worker

        def ready() -> bool:
            pids = {w.proc.pid for w in self.live_workers() if w.proc is not None}
            found = {_pid_of(w.name) for w in Worker.all(connection=self.conn) if w.get_state() in ("idle", "busy")}
            return len(pids & found) >= count

        await self.wait(ready, f"{count} workers listening", timeout)

    def worker_of(self, job_id: str) -> Proc | None:
        """The live worker process running `job_id` now (the job record names the worker; its name has the pid)."""
        name = self.conn.hget(keys.job(job_id), "worker")
        if name is None or self.conn.hget(keys.job(job_id), "status") != b"running":
            return None
        pid = _pid_of(name.decode())
        return next((w for w in self.live_workers() if w.proc is not None and w.proc.pid == pid), None)

    def kill(self, proc: Proc) -> float:
        """SIGKILL a worker (no clean-up of any kind), and return when it died."""
        assert proc.proc is not None
        os.kill(proc.proc.pid, signal.SIGKILL)
        proc.proc.wait()
        return time.time()

    def logs(self) -> str:
        return "\n".join(p.tail() for p in [self.bot, *self.workers])

    async def wait(self, check: Callable[[], T], what: str, timeout: float = 60.0) -> T:
        try:
            return await self.fake.wait_for(check, timeout=timeout, what=what)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}\n{self.logs()}") from None

    async def poll(self, check: Callable[[], T], what: str, timeout: float = 60.0, every: float = 0.05) -> T:
        """Like `wait`, for conditions on Redis (the fake's waiters wake only on Discord changes)."""
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}\n{self.logs()}")
            await asyncio.sleep(every)

    # -- Discord --------------------------------------------------------------------------------------------

    async def channel(self) -> tuple[int, Member]:
        """A fresh channel, and a member in it."""
        channel = await self.fake.create_channel(self.guild.id, f"r-{len(self.guild.channel_ids)}")
        return channel.id, await self.member()

    async def member(self) -> Member:
        """Another member (each may have only a few jobs queued or running at once)."""
        return await self.fake.create_member(self.guild.id, f"m{len(self.guild.member_ids)}")

    async def ask(self, channel_id: int, member: Member, prompt: str, **options: Any) -> tuple[Interaction, str]:
        """/imagine as `member`; returns the acknowledged interaction and the job id once it is queued."""
        inter = await self.fake.slash(
            "imagine", channel_id=channel_id, user_id=member.id, options={"prompt": prompt, **options}
        )
        inter = await self.fake.wait_for_ack(inter, timeout=10)
        message_id = inter.original_message_id or 0
        raw = await self.poll(lambda: self.conn.get(keys.message(message_id)), "the job to be queued", 30)
        return inter, raw.decode()

    def results(self, channel_id: int, job_id: str) -> list[Message]:
        """Live messages in the channel that show this job's result (an image and its buttons)."""
        wanted = f"imagine:r:{job_id}"
        return [m for m in self.fake.messages(channel_id) if m.attachments and wanted in m.custom_ids()]

    async def result(self, channel_id: int, job_id: str, timeout: float = 60.0) -> Message:
        found = await self.wait(lambda: self.results(channel_id, job_id), f"the result of {job_id}", timeout)
        return found[0]

    async def posted(self, job_id: str) -> dict[str, Any]:
        """The job's delivery marker once it says posted (it is set just after Discord answers)."""
        from worker import idempotency

        def done() -> dict[str, Any] | None:
            state = idempotency.state(self.conn, job_id)
            return state if state and state.get("state") == "posted" else None

        return await self.poll(done, f"job {job_id} marked posted", 30)

    # -- Redis ----------------------------------------------------------------------------------------------

    async def restart_redis(self, *, crash: bool, down_s: float = 1.0) -> None:
        """Stop Redis (SIGKILL when `crash`, else a clean SIGTERM), wait `down_s`, start it on the same port."""
        port = self.server.port
        if crash:
            pid = self.server.pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self.server.stop()
        await asyncio.sleep(down_s)
        self.server = EmbeddedRedis(self.server.folder, port=port)
        await asyncio.to_thread(self.server.start)


def _pid_of(worker_name: str) -> int:
    """Worker names are `host.pid.random` (worker.worker.worker_name)."""
    try:
        return int(worker_name.rsplit(".", 2)[-2])
    except (IndexError, ValueError):
        return -1


def job_events(conn: redis.Redis, job_id: str) -> list[dict[str, Any]]:
    """Every progress event of a job, as JSON."""
    entries: Any = conn.xrange(keys.progress(job_id))
    return [json.loads(fields[b"event"]) for _, fields in entries]
