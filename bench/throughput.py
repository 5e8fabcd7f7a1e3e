"""Sections 1 and 2: jobs per second through the worker against the same pipeline called directly, and batching.

Both drive the real worker code in this process (`ImagineWorker`, the class `imagine worker` runs: RQ over a real
Redis, the job function, progress events with previews, PNG encoding, records) in burst mode over jobs that are
already waiting, and call the worker's own resident pipeline directly for the other side, so the model, the sizes,
the steps, the seeds and the thread count are the same. Sides alternate round by round.

1. Overhead: the worker with batching off (`batch_max=1`) against a plain loop over the same pipeline, with the same
   CPU speed settings on both sides: what Redis, RQ, encoding and progress cost. Target: ratio >= 0.95.
   Also the product as shipped (batching and speed settings on) against a plain diffusers loop (float32, as
   `DiffusionPipeline.from_pretrained` gives it): what the worker gains.
2. Batching: 8 waiting jobs that share model, size, steps, sampler and guidance, worked off with `batch_max` B = 1,
   2, 4 and 8; throughput relative to B = 1, and how far each batched image is from its unbatched twin.
"""

from __future__ import annotations

import functools
import io
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench import common

log = logging.getLogger(__name__)

PROMPTS = [
    "a red circle on the left, blue background",
    "a big green star in the top left corner on a black background",
    "a small yellow triangle in the center on a white background",
    "a blue square on the right, red background",
    "a purple heart at the bottom on a green background",
    "an orange circle at the top, black background",
    "a white star on the left on a purple background",
    "a big red square in the center, yellow background",
]


@dataclass
class Rig:
    """A Redis, a bench data folder, the model entry, and one resident pipeline shared by every worker context."""

    redis_url: str
    data_dir: Path
    model: str | None
    conn: Any = None
    base: Any = None
    entry: Any = None
    contexts: dict[tuple[int, bool], Any] = field(default_factory=dict)
    #: (batch_max, sample_s, encode_s) of every job run, as its result reports them.
    timings: list[tuple[int, float, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        from imagine.redis import client

        self.conn = client(self.redis_url)
        self.base = common.worker_context(common.bench_settings(self.redis_url, self.data_dir), self.conn)
        self.entry = self.base.registry.resolve(self.model, self.data_dir)
        self.base.pipelines.get(self.entry)

    @property
    def pipe(self) -> Any:
        return self.base.pipelines.get(self.entry)[0].pipe

    def context(self, batch_max: int, cpu_bf16: bool = True) -> Any:
        key = (batch_max, cpu_bf16)
        if key not in self.contexts:
            settings = common.bench_settings(self.redis_url, self.data_dir, batch_max=batch_max, cpu_bf16=cpu_bf16)
            self.contexts[key] = common.worker_context(settings, self.conn, share=self.base)
        return self.contexts[key]

    def specs(self, n: int, steps: int | None = None) -> list[Any]:
        from imagine.contract import JobSpec

        return [
            JobSpec(prompt=PROMPTS[i % len(PROMPTS)], model=self.entry.name, seed=1000 + i, steps=steps)
            for i in range(n)
        ]

    def through_worker(self, specs: list[Any], batch_max: int, cpu_bf16: bool = True) -> tuple[float, list[bytes]]:
        """Enqueue `specs` (not timed), then time an in-process worker working them off; returns (s, PNGs)."""
        from imagine import progress, queue
        from imagine.contract import Done

        self.conn.flushdb()
        ctx = self.context(batch_max, cpu_bf16)
        jobs = [queue.enqueue(self.conn, spec, ctx.settings) for spec in specs]
        started = time.time()
        common.run_worker_burst(ctx)
        pngs = []
        ended = started
        for job in jobs:
            result = queue.fetch_result(self.conn, job.id)
            if result is None:
                raise RuntimeError(f"bench job {job.id} has no result")
            pngs.append(result.images[0].png_bytes())
            self.timings.append((batch_max, result.timings.sample_s, result.timings.encode_s))
            ended = max([ended, *(e.ts for _, e in progress.read(self.conn, job.id) if isinstance(e, Done))])
        # Up to the last job's `done`: a resident worker never shuts down, so the burst's teardown is not counted.
        return ended - started, pngs

    def direct(self, specs: list[Any], pipe: Any, fast: bool) -> float:
        """The same requests as a plain loop of pipeline calls; seconds."""
        import torch

        from worker import speed

        e = self.entry
        start = time.perf_counter()
        for spec in specs:
            with speed.applied(pipe, enabled=fast):
                pipe(
                    spec.prompt,
                    num_inference_steps=spec.steps or e.steps,
                    guidance_scale=e.guidance,
                    width=e.width,
                    height=e.height,
                    generator=[torch.Generator("cpu").manual_seed(spec.seed)],
                    output_type="pil",
                )
        return time.perf_counter() - start


def plain_pipeline(rig: Rig) -> Any:
    """The model as `DiffusionPipeline.from_pretrained` gives it: float32, no speed settings."""
    from diffusers import DiffusionPipeline

    from models.loader import import_project_components

    folder = Path(rig.entry.location(rig.data_dir))
    import_project_components(folder)  # the shipped model's own UNet class (coordinate channels)
    pipe = DiffusionPipeline.from_pretrained(str(folder))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def overhead(rig: Rig, jobs: int, rounds: int, steps: int | None = None) -> dict[str, Any]:
    """Section 1."""
    specs = rig.specs(jobs, steps)
    plain = plain_pipeline(rig)
    rig.through_worker(specs[:2], 1)  # warm-up: first calls, channels-last conversion
    rig.direct(specs[:1], plain, fast=False)
    cpu: dict[str, float] = {"worker": 0.0, "direct": 0.0}

    def timed(side: str, run: Any) -> float:
        """Wall seconds of `run()`; this process's CPU seconds (every thread) are added up beside them."""
        before = time.process_time()
        took = float(run())
        cpu[side] = cpu.get(side, 0.0) + time.process_time() - before
        return took

    worker_s, direct_s, shipped_s, plain_s = common.alternate(
        rounds,
        [
            lambda: timed("worker", lambda: rig.through_worker(specs, 1)[0]),
            lambda: timed("direct", lambda: rig.direct(specs, rig.pipe, fast=True)),
            lambda: rig.through_worker(specs, rig.base.settings.batch_max)[0],
            lambda: rig.direct(specs, plain, fast=False),
        ],
    )
    alone = [t for t in rig.timings if t[0] == 1]
    ratios = [d / w for w, d in zip(worker_s, direct_s, strict=True)]
    gains = [p / s for s, p in zip(shipped_s, plain_s, strict=True)]
    return {
        "jobs_per_round": jobs,
        "rounds": rounds,
        "worker_jobs_per_s": jobs / common.median(worker_s),
        "direct_jobs_per_s": jobs / common.median(direct_s),
        "ratio": common.median(ratios),
        "ratio_of_totals": sum(direct_s) / sum(worker_s),
        "ratio_per_round": [round(r, 3) for r in ratios],
        # CPU seconds are what other processes' load disturbs least (the Redis server's own are not counted).
        "ratio_of_cpu_seconds": cpu["direct"] / cpu["worker"] if cpu["worker"] else math.nan,
        # Inside a job with batching off: the pipeline call, and PNG encoding (upscale, parameters).
        "job_sample_s": common.median([t[1] for t in alone]),
        "job_encode_s": common.median([t[2] for t in alone]),
        "shipped_jobs_per_s": jobs / common.median(shipped_s),
        "plain_diffusers_jobs_per_s": jobs / common.median(plain_s),
        "shipped_vs_plain": common.median(gains),
        "shipped_vs_plain_per_round": [round(g, 3) for g in gains],
    }


def _pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(png)) as picture:
        return np.asarray(picture.convert("RGB")).astype(np.int16)


def batching(rig: Rig, waiting: int, sizes: list[int], rounds: int, steps: int | None = None) -> dict[str, Any]:
    """Section 2."""
    specs = rig.specs(waiting, steps)
    rig.through_worker(specs[:2], max(sizes))  # warm-up
    images: dict[int, list[bytes]] = {}

    def side(b: int) -> float:
        took, pngs = rig.through_worker(specs, b)
        images[b] = pngs
        return took

    times = common.alternate(rounds, [functools.partial(side, b) for b in sizes])
    base = sizes.index(1) if 1 in sizes else 0
    curve = []
    for b, ts in zip(sizes, times, strict=True):
        speedups = [tb / t for tb, t in zip(times[base], ts, strict=True)]
        diffs = [np.abs(_pixels(x) - _pixels(y)) for x, y in zip(images[sizes[base]], images[b], strict=True)]
        curve.append(
            {
                "batch_max": b,
                "jobs_per_s": waiting / common.median(ts),
                "speedup": common.median(speedups),
                "speedup_per_round": [round(s, 3) for s in speedups],
                "max_pixel_diff": int(max(d.max() for d in diffs)),
                "mean_pixel_diff": float(np.mean([d.mean() for d in diffs])),
            }
        )
    return {"waiting_jobs": waiting, "rounds": rounds, "curve": curve}
