"""Measure fair order: the queue wait of a light member's job while a heavy member floods the queue.

One run, two modes, the same machine and worker: a heavy member submits `--flood` jobs; once the worker has
started the first of them, a light member submits one job. The light job's wait (from its enqueue to the worker
starting it) is measured

- FIFO: jobs pushed on RQ's list in arrival order, as the queue worked before fair ordering;
- fair: through `imagine.queue.enqueue`, which puts each job in its fair place (`imagine.fair`).

The worker is the real in-process `ImagineWorker` with the tiny model resident (batching off, so jobs run one at a
time and the order alone decides the waits). Usage: python bench/fair.py [--flood 12] [--steps 4] [--out FILE]
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from imagine import keys, progress, queue  # noqa: E402
from imagine.contract import JobSpec, Requester, Started  # noqa: E402
from imagine.redis import EmbeddedRedis  # noqa: E402
from imagine.settings import Settings  # noqa: E402

log = logging.getLogger("bench.fair")

GUILD, HEAVY, LIGHT = 1, 100, 200


def spec(user: int, i: int, steps: int) -> JobSpec:
    # A different guidance per job: no two are batch-compatible, whatever the worker's batching setting.
    return JobSpec(
        prompt=f"member {user} job {i}",
        model="tiny",
        steps=steps,
        seed=i,
        guidance=1.0 + i / 100,
        requester=Requester(guild_id=GUILD, user_id=user),  # no channel: nothing to deliver to Discord
    )


def started(conn: redis.Redis, job_id: str) -> float | None:
    for _, event in progress.read(conn, job_id):
        if isinstance(event, Started):
            return event.ts
    return None


def run_worker(ctx: Any) -> threading.Thread:
    """The real worker in a thread, in burst mode (no signal handlers outside the main thread)."""
    from rq.timeouts import TimerDeathPenalty

    from worker.worker import ImagineWorker

    def work() -> None:
        worker = ImagineWorker([keys.IMAGE_QUEUE], ctx=ctx)
        worker._install_signal_handlers = lambda: None  # type: ignore[method-assign]
        worker.death_penalty_class = TimerDeathPenalty
        worker.work(burst=True, logging_level="WARNING")

    thread = threading.Thread(target=work, name="bench-worker")
    thread.start()
    return thread


def scenario(conn: redis.Redis, settings: Settings, ctx: Any, *, fair: bool, flood: int, steps: int) -> dict[str, Any]:
    conn.flushdb()
    from worker.worker import advertise

    advertise(ctx)
    rq_queue = queue.image_queue(conn)

    def submit(user: int, i: int) -> tuple[str, float]:
        job_spec = spec(user, i, steps)
        t0 = time.time()
        if fair:
            job_id = queue.enqueue(conn, job_spec, settings).id
        else:
            job_id = queue.new_job_id()
            conn.hset(keys.job(job_id), "spec", json.dumps(job_spec.public()))
            rq_queue.enqueue(keys.GENERATE_FUNC, job_spec.payload(), job_id=job_id, description=f"image {job_id}")
        return job_id, t0

    heavy = [submit(HEAVY, i) for i in range(flood)]
    worker = run_worker(ctx)
    deadline = time.monotonic() + 120
    while started(conn, heavy[0][0]) is None:  # the light job arrives while the flood is being worked through
        if time.monotonic() > deadline:
            raise RuntimeError("the worker did not start")
        time.sleep(0.01)
    light_id, light_t0 = submit(LIGHT, flood)
    worker.join()
    light_start = started(conn, light_id)
    assert light_start is not None
    heavy_starts = [started(conn, job_id) for job_id, _ in heavy]
    ahead = sum(1 for s in heavy_starts if s is not None and s < light_start) - 1  # the one running on arrival
    every = sorted(s for s in [*heavy_starts, light_start] if s is not None)
    runs = [b - a for a, b in itertools.pairwise(every)]  # one worker: start to start is one job's time
    return {
        "mode": "fair" if fair else "fifo",
        "light_wait_s": round(light_start - light_t0, 3),
        "heavy_jobs_started_before_light": ahead,
        "job_s_median": round(statistics.median(runs), 3) if runs else None,
        "heavy_last_start_s": round(max(s for s in heavy_starts if s) - heavy[0][1], 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flood", type=int, default=12)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from models import tiny
    from worker.context import WorkerContext

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        tiny.ensure(data_dir / "models" / "tiny")
        server = EmbeddedRedis(Path(tmp) / "redis")
        server.start()
        try:
            values: dict[str, Any] = {
                "redis_url": server.url,
                "data_dir": data_dir,
                "torch_threads": 1,
                "preview_every": 0,
                "member_max_active": args.flood + 1,
                "batch_max": 1,  # one job per sampler call, where the worker batches
            }
            settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
            conn = redis.Redis.from_url(server.url)
            ctx = WorkerContext.create(settings, conn, name="bench-fair")
            ctx.pipelines.get(ctx.registry.resolve("tiny", data_dir))
            results = [
                scenario(conn, settings, ctx, fair=False, flood=args.flood, steps=args.steps),
                scenario(conn, settings, ctx, fair=True, flood=args.flood, steps=args.steps),
            ]
        finally:
            server.stop()
    report = {"flood": args.flood, "steps": args.steps, "results": results}
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
