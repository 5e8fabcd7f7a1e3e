"""Measure the spine: queue pickup latency, and what the queue path costs over calling diffusers directly.

1. Pickup: a resident `imagine worker` process waits on the queue; 100 one-step jobs are enqueued one at a time
   (each after the last finished, so the worker is idle), and the time from just before `enqueue` to the worker's
   `started` event (stamped inside the job function) is recorded. Median, p90, max.
2. Cold: `imagine generate` as a user runs it on a fresh machine (starts its own Redis and an in-process worker)
   versus a plain script that loads the same pipeline with `DiffusionPipeline.from_pretrained` and calls it once.
   Both are fresh processes; medians over a few runs.
3. Warm: the same request through the queue to the resident worker (enqueue → result) versus a direct call of an
   already loaded pipeline in this process.

Everything runs in the same invocation on the same machine, with the same torch thread count.
Usage: python bench/spine.py [--model NAME] [--steps N] [--jobs 100] [--runs 3] [--threads N] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from imagine import progress, queue  # noqa: E402
from imagine.contract import JobSpec, Started  # noqa: E402
from imagine.redis import EmbeddedRedis  # noqa: E402
from imagine.settings import Settings  # noqa: E402
from models import registry  # noqa: E402

log = logging.getLogger("bench.spine")

DIRECT = """
import sys, time, torch
t0 = time.perf_counter()
from diffusers import DiffusionPipeline
threads = int(sys.argv[6])
if threads:
    torch.set_num_threads(threads)
pipe = DiffusionPipeline.from_pretrained(sys.argv[1])
pipe.set_progress_bar_config(disable=True)
g = [torch.Generator("cpu").manual_seed(1)]
image = pipe(sys.argv[2], num_inference_steps=int(sys.argv[3]), guidance_scale=float(sys.argv[4]),
             width=int(sys.argv[5].split("x")[0]), height=int(sys.argv[5].split("x")[1]), generator=g).images[0]
image.save(sys.argv[7])
"""


def _env(data_dir: Path, threads: int, redis_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGINE_") and k != "REDIS_URL"}
    env.update(HF_HUB_OFFLINE="1", IMAGINE_DATA_DIR=str(data_dir), IMAGINE_TORCH_THREADS=str(threads))
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def pickup(conn: redis.Redis, settings: Settings, model: str, jobs: int) -> list[float]:
    """Seconds from enqueue to the job function starting, one job at a time on an idle resident worker."""
    delays = []
    for i in range(jobs):
        spec = JobSpec(prompt="a red circle", model=model, steps=1, seed=i)
        t0 = time.time()
        job = queue.enqueue(conn, spec, settings)
        result = queue.wait(conn, job.id, timeout=120)
        started = next(e for _, e in progress.read(conn, result.job_id) if isinstance(e, Started))
        delays.append(started.ts - t0)
    return delays


def warm(conn: redis.Redis, settings: Settings, entry: Any, steps: int, runs: int, threads: int) -> dict[str, float]:
    """Median seconds for one image: through the queue to the resident worker, and a direct call in-process."""
    import torch
    from diffusers import DiffusionPipeline

    if threads:
        torch.set_num_threads(threads)
    where = str(entry.location(settings.data_dir))
    pipe = DiffusionPipeline.from_pretrained(where)
    pipe.set_progress_bar_config(disable=True)
    via_queue, direct = [], []
    for i in range(runs + 1):  # the first of each is a warm-up
        spec = JobSpec(prompt="a red circle", model=entry.name, steps=steps, seed=i)
        t0 = time.perf_counter()
        job = queue.enqueue(conn, spec, settings)
        queue.wait(conn, job.id, timeout=600)
        t1 = time.perf_counter()
        pipe(
            "a red circle",
            num_inference_steps=steps,
            guidance_scale=entry.guidance,
            width=entry.width,
            height=entry.height,
            generator=[torch.Generator("cpu").manual_seed(i)],
        )
        t2 = time.perf_counter()
        if i:
            via_queue.append(t1 - t0)
            direct.append(t2 - t1)
    return {"queue_s": statistics.median(via_queue), "direct_s": statistics.median(direct)}


def cold(data_dir: Path, entry: Any, steps: int, runs: int, threads: int, work: Path) -> dict[str, float]:
    """Median wall seconds of a fresh `imagine generate` process and of a fresh direct-diffusers process."""
    gen, direct = [], []
    size = f"{entry.width}x{entry.height}"
    for i in range(runs):
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "imagine", "generate", "a red circle", "--seed", "1", "--model", entry.name,
             "--steps", str(steps), "--out", str(work / f"gen-{i}.png")],
            cwd=ROOT, env=_env(data_dir, threads, None), check=True, capture_output=True,
        )  # fmt: skip
        t1 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", DIRECT, str(entry.location(data_dir)), "a red circle", str(steps),
             str(entry.guidance), size, str(threads), str(work / f"direct-{i}.png")],
            cwd=ROOT, env=_env(data_dir, threads, None), check=True, capture_output=True,
        )  # fmt: skip
        t2 = time.perf_counter()
        gen.append(t1 - t0)
        direct.append(t2 - t1)
    return {"generate_s": statistics.median(gen), "direct_s": statistics.median(direct)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="registry name (default: the registry's default, or its fallback)")
    parser.add_argument("--steps", type=int, help="steps for the cold and warm comparisons (model default)")
    parser.add_argument("--jobs", type=int, default=100, help="jobs for the pickup latency")
    parser.add_argument("--runs", type=int, default=3, help="runs for the cold and warm comparisons")
    parser.add_argument("--threads", type=int, default=0, help="torch threads for every side (0: torch default)")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "bench-spine.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    work = Path(tempfile.mkdtemp(prefix="bench-spine-"))
    data_dir = work / "data"
    entry = registry.load().resolve(args.model, data_dir)
    steps = args.steps or entry.steps
    if entry.source == "tiny":
        from models import tiny

        tiny.ensure(Path(entry.location(data_dir)))
    report: dict[str, Any] = {
        "model": entry.name,
        "steps": steps,
        "size": f"{entry.width}x{entry.height}",
        "threads": args.threads or "default",
        "cpus": os.cpu_count(),
        "load_avg_at_start": os.getloadavg()[0],
    }
    print(f"model {entry.name} ({report['size']}, {steps} steps), torch threads {report['threads']}", flush=True)

    with EmbeddedRedis(work / "redis") as server:
        conn = redis.Redis.from_url(server.url)
        # model_validate reads no environment or .env: the bench's settings are exactly these.
        settings = Settings.model_validate(
            {"redis_url": server.url, "data_dir": data_dir, "torch_threads": args.threads}
        )
        worker = subprocess.Popen(
            [sys.executable, "-m", "imagine", "worker", "--preload", entry.name],
            cwd=ROOT, env=_env(data_dir, args.threads, server.url),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            from rq import Worker

            deadline = time.monotonic() + 300
            while Worker.count(connection=conn) < 1:
                if time.monotonic() > deadline or worker.poll() is not None:
                    raise SystemExit("the worker did not start")
                time.sleep(0.2)
            delays = pickup(conn, settings, entry.name, args.jobs)
            report["pickup"] = {
                "jobs": len(delays),
                "median_ms": 1000 * statistics.median(delays),
                "p90_ms": 1000 * _pct(delays, 0.9),
                "max_ms": 1000 * max(delays),
            }
            p = report["pickup"]
            print(
                f"enqueue -> job started, {len(delays)} jobs: median {p['median_ms']:.1f} ms, "
                f"p90 {p['p90_ms']:.1f} ms, max {p['max_ms']:.1f} ms",
                flush=True,
            )
            report["warm"] = warm(conn, settings, entry, steps, args.runs, args.threads)
            w = report["warm"]
            print(f"warm, one image: through the queue {w['queue_s']:.3f} s, direct call {w['direct_s']:.3f} s "
                  f"(overhead {w['queue_s'] - w['direct_s']:+.3f} s)", flush=True)  # fmt: skip
        finally:
            worker.terminate()
            worker.wait(timeout=60)
            conn.close()

    report["cold"] = cold(data_dir, entry, steps, args.runs, args.threads, work)
    c = report["cold"]
    print(f"cold process, one image: imagine generate {c['generate_s']:.2f} s, direct diffusers script "
          f"{c['direct_s']:.2f} s (overhead {c['generate_s'] - c['direct_s']:+.2f} s)", flush=True)  # fmt: skip
    report["load_avg_at_end"] = os.getloadavg()[0]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
