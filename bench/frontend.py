"""Sections 4 and 5: the bot under a burst, and what the queue adds to a job, through the fake Discord.

One stack, as deployed: the fake Discord in its own process (`python -m tests.support.fake_discord`, OpenAPI
checks off: the bench measures the bot, not the fake's validator), `imagine bot` and `imagine worker` as processes,
and a real Redis. Times are taken where things happen: the fake stamps an interaction when it dispatches it and
when the bot's callback arrives, and every message edit; the bot stamps `enqueued_at`; the worker stamps its
progress events. All are `time.time()` on this one machine.

4. Burst: 100 `/imagine` interactions within one second, from 20 members. Time from INTERACTION_CREATE to the bot's
   first response (its deferral; Discord allows 3 s) and to the "#n in queue" edit. The worker is suspended
   meanwhile (RQ's suspend), so the figures are the bot's alone.
5. Queue overhead: 200 one-step jobs, one at a time through an idle worker: enqueue -> the job function starts,
   and the sampler's last step -> the result posted on the member's message (encoding, record, upload).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import common

log = logging.getLogger(__name__)

MEMBERS = 20


def _env(redis_url: str, data_dir: Path, info: dict[str, Any], guild_id: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGINE_") and k != "REDIS_URL"}
    env.update(
        REDIS_URL=redis_url,
        DISCORD_TOKEN=info["token"],
        IMAGINE_DISCORD_API_BASE=info["api_base"],
        IMAGINE_DEV_GUILD_ID=str(guild_id),
        IMAGINE_DATA_DIR=str(data_dir),
        IMAGINE_TORCH_THREADS="1",
        IMAGINE_WORKER_METRICS_PORT="0",
        IMAGINE_BOT_METRICS_PORT="0",
        # The burst is 100 jobs from 20 members in one server: above the default per-member and per-server limits.
        IMAGINE_MEMBER_MAX_ACTIVE="1000",
        IMAGINE_MEMBER_MAX_PER_HOUR="100000",
        IMAGINE_GUILD_MAX_QUEUE="1000",
        HF_HUB_OFFLINE="1",
        OMP_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
    )
    return env


class _Proc:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log = log_dir / f"{name}.log"
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(argv, cwd=common.ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def tail(self) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
        return ""


async def _until(check: Any, what: str, timeout: float, procs: list[_Proc]) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = await check()
        if found:
            return found
        dead = [p for p in procs if p.proc.poll() is not None]
        if dead or time.monotonic() > deadline:
            logs = "\n".join(f"--- {p.name}\n{p.tail()}" for p in procs)
            raise RuntimeError(f"timed out waiting for {what}\n{logs}")
        await asyncio.sleep(0.2)


def _first_version(message: Any, predicate: Any) -> float | None:
    """When a message first showed what `predicate` wants (its creation or one of its edits)."""
    versions = [*message.edits, message.snapshot()]
    for version in versions:
        if predicate(version):
            return float(version["edited_at"] or message.created_at)
    return None


def _queued(version: dict[str, Any]) -> bool:
    return " in queue" in (version.get("content") or "")


def _result(version: dict[str, Any]) -> bool:
    return bool(version.get("attachments")) and any("imagine:" in str(c) for c in version.get("components") or [])


async def _burst(remote: Any, scene: Any, members: list[int], count: int, within_s: float) -> dict[str, Any]:
    """Section 4."""
    gap = within_s / count
    start = time.monotonic()

    async def one(i: int) -> Any:
        await asyncio.sleep(max(0.0, start + i * gap - time.monotonic()))
        return await remote.slash(
            "imagine",
            channel_id=scene.channel.id,
            user_id=members[i % len(members)],
            options={"prompt": f"{common_prompt(i)} --seed {i}"},
        )

    sent = await asyncio.gather(*(one(i) for i in range(count)))
    sent_span = max(i.created_at for i in sent) - min(i.created_at for i in sent)

    async def done() -> list[Any] | None:
        found = [await remote.interaction(i.id) for i in sent]
        if any(i.acked_at is None or i.original_message_id is None for i in found):
            return None
        messages = [await remote.message(i.original_message_id) for i in found]
        if any(_first_version(m, _queued) is None for m in messages):
            return None
        return list(zip(found, messages, strict=True))

    pairs = await _until(done, "every burst interaction to be answered with its place in the queue", 120, [])
    first = [1000 * (i.acked_at - i.created_at) for i, _ in pairs]
    queued = [1000 * (_first_version(m, _queued) - i.created_at) for i, m in pairs]  # type: ignore[operator]
    return {
        "interactions": count,
        "sent_within_s": round(sent_span, 3),
        "first_response_ms": _summary(first),
        "queue_position_ms": _summary(queued),
        "over_3s": sum(1 for v in first if v > 3000),
    }


def common_prompt(i: int) -> str:
    from bench.throughput import PROMPTS

    return PROMPTS[i % len(PROMPTS)]


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": common.percentile(values, 0.5),
        "p95": common.percentile(values, 0.95),
        "p99": common.percentile(values, 0.99),
        "max": max(values),
    }


async def _queue_overhead(remote: Any, conn: Any, scene: Any, members: list[int], jobs: int) -> dict[str, Any]:
    """Section 5."""
    from imagine import keys, progress
    from imagine.contract import Progress, Started

    waits: list[float] = []
    posts: list[float] = []
    for i in range(jobs):
        inter = await remote.slash(
            "imagine",
            channel_id=scene.channel.id,
            user_id=members[i % len(members)],
            options={"prompt": f"{common_prompt(i)} --seed {i}", "steps": 1},
        )

        async def posted(inter: Any = inter) -> Any:
            found = await remote.interaction(inter.id)
            if found.original_message_id is None:
                return None
            message = await remote.message(found.original_message_id)
            at = _first_version(message, _result)
            return (message, at) if at is not None else None

        message, posted_at = await _until(posted, f"job {i} to be posted", 60, [])
        job_id = conn.get(keys.message(message.id))
        if job_id is None:
            raise RuntimeError(f"no job recorded for message {message.id}")
        job_id = job_id.decode()
        enqueued_at = float(conn.hget(keys.job(job_id), "enqueued_at"))
        events = [e for _, e in progress.read(conn, job_id)]
        started = next(e.ts for e in events if isinstance(e, Started))
        last_step = max(e.ts for e in events if isinstance(e, Progress))
        waits.append(1000 * (started - enqueued_at))
        posts.append(1000 * (posted_at - last_step))
    return {
        "jobs": jobs,
        "enqueue_to_start_ms": {"median": common.median(waits), "p95": common.percentile(waits, 0.95)},
        "end_to_posted_ms": {"median": common.median(posts), "p95": common.percentile(posts, 0.95)},
    }


async def _run(work: Path, redis_url: str, data_dir: Path, burst: int, jobs: int, model: str | None) -> dict[str, Any]:
    from rq import Worker
    from rq.suspension import resume, suspend

    from imagine import fair, keys
    from imagine.redis import client
    from tests.support.control import RemoteFakeDiscord, decode
    from tests.support.fixtures import start_fake_process

    conn = client(redis_url)
    fake, info = start_fake_process("--scene", "--no-validate")
    scene = decode(info["scene"])
    env = _env(redis_url, data_dir, info, scene.guild.id)
    log_dir = work / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    procs: list[_Proc] = []
    try:
        async with RemoteFakeDiscord(info["control_url"]) as remote:
            suspend(conn)  # the worker loads its model, then waits: the burst measures the bot alone
            argv = [sys.executable, "-m", "imagine"]
            procs.append(_Proc("worker", [*argv, "worker", "--preload", model or ""], env, log_dir))
            procs.append(_Proc("bot", [*argv, "bot"], env, log_dir))

            async def ready() -> bool:
                commands = await remote.commands(scene.guild.id)
                suspended = any(w.get_state() == "suspended" for w in Worker.all(connection=conn))
                return suspended and any(c.name == "imagine" for c in commands) and conn.hlen(keys.MODELS) > 0

            await _until(ready, "the bot and the worker to start", 300, procs)
            members = [scene.alice.id, scene.bob.id]
            for n in range(MEMBERS - len(members)):
                members.append((await remote.create_member(scene.guild.id, f"member{n}")).id)
            result: dict[str, Any] = {"fake_discord": "own process, OpenAPI validation off"}
            result["burst"] = await _burst(remote, scene, members, burst, 1.0)
            fair.clear(conn, keys.IMAGE_QUEUE)  # the burst's jobs are not run: empty the queue
            resume(conn)
            await asyncio.sleep(1.5)  # a suspended worker looks again every second
            result["queue"] = await _queue_overhead(remote, conn, scene, members, jobs)
            errors = await remote.take_errors()
            if errors:
                log.warning("the fake Discord saw %d invalid requests: %s", len(errors), errors[:3])
            return result
    finally:
        for p in reversed(procs):
            p.stop()
        fake.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            fake.wait(timeout=10)
        conn.close()


def frontend(work: Path, redis_url: str, data_dir: Path, burst: int, jobs: int, model: str | None) -> dict[str, Any]:
    """Sections 4 and 5 (an event loop of their own)."""
    return asyncio.run(_run(work, redis_url, data_dir, burst, jobs, model))
