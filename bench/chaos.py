"""Chaos: N /imagine requests from several fake members through the fake Discord, while workers are SIGKILLed and
restarted, Redis crashes and comes back, and Discord answers 429, 5xx and late; then every request is accounted.

What runs: an embedded Redis (append-only, on a fixed port so it can be crashed and restarted), the fake Discord in
this process, a real `imagine bot` process and `--workers` real `imagine worker` processes, all as deployed. Each
member keeps at most `--in-flight` requests open (the server's per-member limit is 4), with a few steps each and
now and then a long one, so kills land mid-job.

Chaos, spread over the submissions: `--kills` worker kills (a busy worker when there is one; a replacement starts
a second or two later, as a supervisor would), `--redis-restarts` Redis crashes (SIGKILL, down 1-3 s, started again
on the same port from its append-only file), and `--discord-faults` injected answers on the routes the bot and the
workers use.

Every request ends in one of: delivered (its result message, with its buttons), failed with a message (the status
message or a reply says why), refused with a message (a private answer, e.g. the queue was unreachable), or lost
(none of those by the deadline). Duplicated: more than one message shows a job's outcome. For each kill, the jobs the
worker was running are followed to their retry: "death -> requeued" (the sweep put it back) and "death -> retry
started" (another worker took it).

Usage: python bench/chaos.py [--jobs 200] [--members 8] [--workers 3] [--kills 6] [--redis-restarts 1]
                             [--discord-faults 12] [--seed 1] [--out FILE] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from redis.backoff import NoBackoff  # noqa: E402
from redis.retry import Retry  # noqa: E402
from rq.registry import StartedJobRegistry  # noqa: E402
from rq.serializers import JSONSerializer  # noqa: E402

from bench.chaos_procs import REGISTRY, Proc, child_env  # noqa: E402
from bench.chaos_report import MAINTENANCE_INTERVAL, Kill, Request, report, summary  # noqa: E402
from imagine import keys  # noqa: E402
from imagine.redis import EmbeddedRedis  # noqa: E402
from tests.support.scenario import FakeDiscord  # noqa: E402
from tests.support.state import Interaction, Member  # noqa: E402

log = logging.getLogger("bench.chaos")


class Chaos:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.work = work
        self.log_dir = work / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.server = EmbeddedRedis(work / "redis")
        self.fake: FakeDiscord | None = None
        self.conn: redis.Redis | None = None
        self.env: dict[str, str] = {}
        self.bot: Proc | None = None
        self.workers: list[Proc] = []
        self.requests: list[Request] = []
        self.kills: list[Kill] = []
        self.redis_restarts: list[dict[str, float]] = []
        self.faults: list[tuple[str, Any]] = []
        self.started_workers = 0

    # -- set-up -------------------------------------------------------------------------------------------------

    def add_worker(self) -> Proc:
        self.started_workers += 1
        argv = [sys.executable, "-m", "imagine", "-v", "worker", "--preload", "tiny"]
        proc = Proc(f"worker-{self.started_workers}", argv, self.env, self.log_dir)
        proc.start()
        self.workers.append(proc)
        return proc

    async def setup(self) -> tuple[list[Member], list[int]]:
        from models import tiny

        data_dir = self.work / "data"
        await asyncio.to_thread(tiny.ensure, data_dir / "models" / "tiny")
        registry = self.work / "registry.toml"
        registry.write_text(REGISTRY)
        await asyncio.to_thread(self.server.start)
        # This script's own reads fail fast: it runs the fake Discord on its loop, which must never wait on Redis.
        self.conn = redis.Redis.from_url(
            self.server.url, retry=Retry(NoBackoff(), 0), socket_connect_timeout=1, socket_timeout=5
        )
        self.fake = FakeDiscord()
        await self.fake.start()
        guild = await self.fake.create_guild("Chaos", channels=("general",))
        channels = [(await self.fake.create_channel(guild.id, f"chaos-{i}")).id for i in range(2)]
        members = [await self.fake.create_member(guild.id, f"member{i}") for i in range(self.args.members)]
        assert self.fake is not None
        self.env = child_env(self.server.url, self.fake.token, self.fake.api_base, guild.id, data_dir, registry)
        self.bot = Proc("bot", [sys.executable, "-m", "imagine", "-v", "bot"], self.env, self.log_dir)
        self.bot.start()
        for _ in range(self.args.workers):
            self.add_worker()
        fake = self.fake
        await fake.wait_for(lambda: any(s.connected for s in fake.gateway.live_sessions()), timeout=120, what="bot")
        await fake.wait_for(lambda: fake.commands(guild.id), timeout=60, what="commands")
        await self.wait_redis(lambda c: c.hexists(keys.MODELS, "tiny"), "a worker to advertise", 180)
        return members, channels

    async def wait_redis(self, check: Any, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                if check(self.conn):
                    return
            await asyncio.sleep(0.2)
        raise TimeoutError(what)

    async def teardown(self) -> None:
        for proc in [self.bot, *self.workers]:
            if proc is not None:
                await asyncio.to_thread(proc.stop)
        if self.fake is not None:
            await self.fake.close()
        if self.conn is not None:
            self.conn.close()
        self.server.stop()

    # -- members ------------------------------------------------------------------------------------------------

    async def member(self, member: Member, channel: int, quota: list[int]) -> None:
        """Ask for jobs while the shared quota lasts, keeping at most `--in-flight` open."""
        assert self.fake is not None
        mine: list[Request] = []
        while True:
            while sum(1 for r in mine if r.outcome == "open") >= self.args.in_flight:
                await asyncio.sleep(0.2)
            if not quota:
                return
            index = quota.pop()
            steps = 20 if self.rng.random() < 0.15 else self.rng.randint(2, 6)
            prompt = f"chaos {index} @everyone --steps {steps} --seed {index}"
            count = self.rng.choice([1, 1, 1, 2, 4])
            request = Request(index, member.id, channel, prompt, time.time())
            self.requests.append(request)
            mine.append(request)
            try:
                inter = await self.fake.slash(
                    "imagine", channel_id=channel, user_id=member.id, options={"prompt": prompt, "count": count}
                )
                request.interaction = inter.id
            except (TimeoutError, LookupError) as exc:
                request.outcome, request.detail = "lost", f"the interaction was not delivered: {exc}"
            await asyncio.sleep(self.rng.uniform(0.05, 0.4))

    # -- watching outcomes --------------------------------------------------------------------------------------

    def _settle(self, request: Request) -> None:
        """Move an open request to its outcome when Discord shows one."""
        assert self.fake is not None and self.conn is not None
        fake = self.fake
        inter: Interaction | None = fake.world.interactions.get(request.interaction)
        if inter is None:
            return
        private = [fake.message(m) for m in inter.followup_ids if fake.message(m).ephemeral]
        if private:
            request.outcome, request.detail = "refused", private[0].content
            return
        request.message = inter.original_message_id or 0
        if request.job is None and request.message:
            with contextlib.suppress(redis.RedisError):
                raw: Any = self.conn.get(keys.message(request.message))
                request.job = raw.decode() if raw else None
        if request.job is None:
            return
        shown = [m for m in fake.messages(request.channel) if f"imagine:r:{request.job}" in m.custom_ids()]
        results = [m for m in shown if m.attachments]
        failures = [
            m
            for m in fake.messages(request.channel)
            if "❌" in m.content
            and (m.id == request.message or (m.message_reference or {}).get("message_id") == request.message)
            and "failed — the reason is in the reply" not in m.content
        ]
        request.results = len(results) + len(failures)
        if results:
            request.outcome, request.detail = "delivered", results[0].content.splitlines()[-1]
        elif failures:
            request.outcome, request.detail = "failed", failures[0].content.splitlines()[-1]

    async def watch(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for request in self.requests:
                if request.outcome == "open":
                    self._settle(request)
            await asyncio.sleep(0.5)

    # -- chaos --------------------------------------------------------------------------------------------------

    def _running_on(self, pid: int) -> list[str]:
        assert self.conn is not None
        registry = StartedJobRegistry(keys.IMAGE_QUEUE, connection=self.conn, serializer=JSONSerializer)
        found = []
        for job_id in registry.get_job_ids():
            name: Any = self.conn.hget(keys.job(job_id), "worker")
            if name and f".{pid}." in name.decode():
                found.append(job_id)
        return found

    def _sweepers(self, exclude: int) -> int:
        """Live worker processes other than `exclude` that RQ knows (started: their reaper runs)."""
        from rq import Worker

        pids = {w.proc.pid for w in self.workers if w.alive() and w.proc is not None} - {exclude}
        try:
            names = [w.name for w in Worker.all(connection=self.conn)]
        except redis.RedisError:
            return 0
        return sum(1 for name in names if any(f".{pid}." in name for pid in pids))

    async def kill_worker(self) -> None:
        live = [w for w in self.workers if w.alive()]
        if not live:
            return
        busy: list[Proc] = []
        with contextlib.suppress(redis.RedisError):
            busy = [w for w in live if w.proc is not None and self._running_on(w.proc.pid)]
        victim = self.rng.choice(busy or live)
        assert victim.proc is not None
        jobs: list[str] = []
        with contextlib.suppress(redis.RedisError):
            jobs = self._running_on(victim.proc.pid)
        sweepers = self._sweepers(exclude=victim.proc.pid)
        os.kill(victim.proc.pid, signal.SIGKILL)
        victim.proc.wait()
        self.kills.append(Kill(time.time(), victim.proc.pid, jobs, sweepers))
        log.info("killed %s (pid %s) running %s", victim.name, victim.proc.pid, jobs or "nothing")
        await asyncio.sleep(self.rng.uniform(1.0, 3.0))  # a supervisor notices and starts another
        self.add_worker()

    async def restart_redis(self) -> None:
        port, pid = self.server.port, self.server.pid
        assert pid is not None
        down = self.rng.uniform(1.0, 3.0)
        at = time.time()
        os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        self.server.stop()
        await asyncio.sleep(down)
        self.server = EmbeddedRedis(self.work / "redis", port=port)
        await asyncio.to_thread(self.server.start)
        self.redis_restarts.append({"at": at, "down_s": round(time.time() - at, 2)})
        log.info("Redis crashed and came back after %.1f s", time.time() - at)

    def discord_fault(self) -> None:
        assert self.fake is not None
        # Mostly where results go (edits of the interaction's message); sometimes channel posts and followups.
        route, method = self.rng.choice(
            [("/webhooks/*", "PATCH")] * 4 + [("/channels/{channel_id}/messages", "POST"), ("/webhooks/*", "POST")]
        )
        kind = self.rng.choice(["429", "500", "502", "late"])
        count = self.rng.randint(1, 6)  # up to 6: more than one request's retries, so some results need the outbox
        if kind == "429":
            fault = self.fake.fail_next(
                route, method=method, status=429, retry_after=self.rng.uniform(0.1, 1.5), count=count
            )
        elif kind == "late":
            delay = self.rng.uniform(0.5, 3.0)
            fault = self.fake.fail_next(route, method=method, status=None, delay=delay, count=count)
        else:
            fault = self.fake.fail_next(route, method=method, status=int(kind), count=count)
        self.faults.append((f"{kind} x{count} on {method} {route}", fault))

    async def chaos(self, stop: asyncio.Event) -> None:
        n = self.args.jobs
        plan = [(self.rng.uniform(0.08, 0.85) * n, "kill") for _ in range(self.args.kills)]
        plan += [(self.rng.uniform(0.3, 0.7) * n, "redis") for _ in range(self.args.redis_restarts)]
        plan += [(self.rng.uniform(0.05, 0.9) * n, "discord") for _ in range(self.args.discord_faults)]
        plan.sort()
        for at, what in plan:
            while len(self.requests) < at and not stop.is_set():
                await asyncio.sleep(0.1)
            if stop.is_set():
                return
            try:
                if what == "kill":
                    await self.kill_worker()
                elif what == "redis":
                    await self.restart_redis()
                else:
                    self.discord_fault()
            except (redis.RedisError, OSError) as exc:
                log.warning("chaos step %s failed: %s", what, exc)

    # -- the run ------------------------------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        members, channels = await self.setup()
        started = time.time()
        stop = asyncio.Event()
        watcher = asyncio.create_task(self.watch(stop), name="watch")
        chaos = asyncio.create_task(self.chaos(stop), name="chaos")
        quota = list(range(self.args.jobs, 0, -1))
        try:
            await asyncio.gather(*(self.member(m, channels[i % len(channels)], quota) for i, m in enumerate(members)))
            await chaos
            deadline = time.monotonic() + self.args.drain
            while any(r.outcome == "open" for r in self.requests) and time.monotonic() < deadline:
                await asyncio.sleep(1.0)
            await asyncio.sleep(3 * MAINTENANCE_INTERVAL)  # anything late (a duplicate) shows up now
            for request in self.requests:
                if request.outcome == "open":
                    self._settle(request)
                if request.outcome == "open":
                    request.outcome, request.detail = "lost", "no result, failure or refusal by the deadline"
                elif request.job:
                    self._settle_count(request)
        finally:
            stop.set()
            chaos.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await chaos
            await watcher
        self._follow_kills()
        return report(self.args, self.requests, self.kills, self.redis_restarts, self.faults, time.time() - started)

    def _settle_count(self, request: Request) -> None:
        outcome, detail = request.outcome, request.detail
        self._settle(request)
        request.outcome, request.detail = outcome, detail

    def _follow_kills(self) -> None:
        """For each killed worker's jobs: when they were requeued and when another worker started them."""
        assert self.conn is not None
        for kill in self.kills:
            for job_id in kill.jobs:
                entries: Any = self.conn.xrange(keys.progress(job_id))
                events = [json.loads(fields[b"event"]) for _, fields in entries]
                requeued = [e["ts"] for e in events if e["type"] == "failed" and "stopped unexpectedly" in e["error"]]
                restarted = [e["ts"] for e in events if e["type"] == "started"]
                later = [t - kill.at for t in requeued if t > kill.at]
                if later:
                    kill.requeued_s.append(round(min(later), 2))
                later = [t - kill.at for t in restarted if t > kill.at]
                if later:
                    kill.retried_s.append(round(min(later), 2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--in-flight", type=int, default=3, help="open requests per member (the limit is 4)")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--kills", type=int, default=6)
    parser.add_argument("--redis-restarts", type=int, default=1)
    parser.add_argument("--discord-faults", type=int, default=12)
    parser.add_argument("--drain", type=float, default=600.0, help="seconds to wait for the last outcomes")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, help="write the full report as JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs) afterwards")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("tests.support").setLevel(logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="imagine-chaos-"))
    chaos = Chaos(args, work)

    async def go() -> dict[str, Any]:
        try:
            return await chaos.run()
        finally:
            await chaos.teardown()

    found = asyncio.run(go())
    print(summary(found))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)  # out/ is not in a fresh checkout
        args.out.write_text(json.dumps(found, indent=2))
    print(f"logs: {work / 'logs'}" if args.keep else "", end="\n" if args.keep else "")
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 0 if found["lost"] == 0 and found["duplicated"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
