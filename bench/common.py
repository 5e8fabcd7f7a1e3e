"""What every bench section shares: one torch thread, statistics, the machine's load, an in-process worker.

Every ratio is measured side by side in one process and one run: the two sides alternate in rounds (A B, B A, …)
so that a load that comes and goes (other engineers' tests, a training run on the other core) falls on both.
"""

from __future__ import annotations

import logging
import math
import os
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

log = logging.getLogger(__name__)


def set_threads(threads: int) -> None:
    """One torch thread by default: on a shared 2-core machine, two threads are slower, not faster."""
    import torch

    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def percentile(values: list[float], q: float) -> float:
    """The q-th quantile (0-1) by linear interpolation between the closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def alternate(rounds: int, sides: Sequence[Callable[[], float]]) -> list[list[float]]:
    """Run each side once per round, reversing the order every other round; returns each side's results."""
    results: list[list[float]] = [[] for _ in sides]
    for r in range(rounds):
        order = list(range(len(sides)))
        if r % 2:
            order.reverse()
        for i in order:
            results[i].append(sides[i]())
    return results


@dataclass
class Load:
    """The machine's load while the bench ran, so figures from a busy machine say so."""

    cpus: int = field(default_factory=lambda: os.cpu_count() or 1)
    at_start: tuple[float, float, float] = field(default_factory=os.getloadavg)
    at_end: tuple[float, float, float] | None = None
    busy_processes: list[str] = field(default_factory=list)

    def finish(self) -> None:
        self.at_end = os.getloadavg()
        self.busy_processes = busy_processes()

    def as_dict(self) -> dict[str, Any]:
        return {
            "cpus": self.cpus,
            "loadavg_1m_at_start": round(self.at_start[0], 2),
            "loadavg_1m_at_end": round(self.at_end[0], 2) if self.at_end else None,
            "busy_processes_at_end": self.busy_processes,
        }


def busy_processes(min_cpu: float = 20.0) -> list[str]:
    """Other processes using the CPU right now (from /proc, over a short window), as 'name (NN%)'."""

    def ticks() -> dict[int, tuple[str, int]]:
        found: dict[int, tuple[str, int]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            found[int(entry.name)] = (
                cmd[:80] or stat.split("(", 1)[1].split(")")[0],
                int(fields[11]) + int(fields[12]),
            )
        return found

    hz = os.sysconf("SC_CLK_TCK")
    before = ticks()
    time.sleep(1.0)
    after = ticks()
    busy = []
    for pid, (cmd, t) in after.items():
        if pid in before:
            share = 100.0 * (t - before[pid][1]) / hz
            if share >= min_cpu:
                busy.append((share, f"{cmd} ({share:.0f}%)"))
    return [text for _, text in sorted(busy, reverse=True)]


@contextmanager
def embedded_redis(folder: Path) -> Iterator[str]:
    """A private embedded Redis for the bench (never the one `imagine` uses by default)."""
    from imagine.redis import EmbeddedRedis

    server = EmbeddedRedis(folder)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def bench_settings(redis_url: str, data_dir: Path, **overrides: Any) -> Any:
    """Worker settings for the bench: no .env, one torch thread, the product's defaults otherwise."""
    from imagine.settings import Settings

    values: dict[str, Any] = {"redis_url": redis_url, "data_dir": data_dir, "torch_threads": 1, **overrides}
    return Settings.model_validate(values)


def worker_context(settings: Any, conn: Any, *, share: Any = None) -> Any:
    """A worker context; `share` (another context) lends its resident pipelines, so a model loads once."""
    from worker.context import WorkerContext

    ctx = WorkerContext.create(settings, conn, name=f"bench-{os.getpid()}")
    if share is not None:
        ctx.pipelines = share.pipelines
    return ctx


def run_worker_burst(ctx: Any) -> float:
    """Run an in-process `ImagineWorker` (the class `imagine worker` runs) until the queue is empty; seconds."""
    from imagine import keys
    from worker.worker import ImagineWorker

    start = time.perf_counter()
    ImagineWorker([keys.IMAGE_QUEUE], ctx=ctx).work(burst=True, logging_level="WARNING")
    return time.perf_counter() - start


def quiet() -> None:
    """Library chatter off: progress bars, the torchvision notice, RQ's per-job lines."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("rq", "rq.worker", "worker", "imagine", "diffusers", "transformers"):
        logging.getLogger(name).setLevel(logging.WARNING)
    import diffusers.utils.logging
    import transformers.utils.logging

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
