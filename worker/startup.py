"""What a worker does before its first job: serve `/metrics`, load and warm up its models, say who it is.

The registry itself is checked earlier, when the worker's context is created (`models.check.require_valid`): a
worker never starts on an invalid registry. With `IMAGINE_COMPILE=true` the default model (or each `--preload`
one) is compiled and run once here, so the compilation never lands on a member's job.
"""

from __future__ import annotations

import logging
import os
import resource
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from imagine.contract import JobSpec
from worker import render
from worker.context import WorkerContext
from worker.metrics import publish_worker

log = logging.getLogger(__name__)


def prepare(ctx: WorkerContext, preload: Sequence[str] = (), *, serve_metrics: bool = True) -> None:
    """Metrics endpoint, preloads (the default model too when compiling), warm-up, and the worker's description."""
    settings = ctx.settings
    port = None
    if serve_metrics and settings.worker_metrics_port:
        port = ctx.metrics.serve(settings.metrics_host, settings.worker_metrics_port)
    ctx.metrics.info.labels(worker=ctx.name, device=str(ctx.device)).set(1)
    ctx.pipelines.on_change = lambda: describe(ctx, port)
    names = list(preload) or ([ctx.registry.default] if ctx.policy.compile else [])
    for name in names:
        entry = ctx.registry.resolve(name or None, settings.data_dir)
        resident, loaded = ctx.pipelines.get(entry)
        if loaded:
            ctx.metrics.loaded(entry.name, resident.load_s)
        if ctx.policy.compile:
            render.warm_up(resident.pipe, resident.family, warm_up_spec(entry))
    describe(ctx, port)


def warm_up_spec(entry: Any) -> JobSpec:
    """A short job at the model's default size (compiled graphs are specialised on shapes)."""
    spec = JobSpec(prompt="warm-up", kind=entry.kind, seed=0, steps=2).resolved(entry.name, entry.defaults)
    return spec.model_copy(update={"steps": 2})


def describe(ctx: WorkerContext, metrics_port: int | None = None) -> None:
    """Publish this worker's device, precision, memory, models (resident and offered) and metrics port for
    `imagine status`; called at start-up and whenever a model is loaded or evicted, so memory is read then."""
    info: dict[str, Any] = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "device": str(ctx.device),
        "dtype": str(ctx.dtype).removeprefix("torch."),
        "memory": memory_of(ctx.device),
        "models": ctx.pipelines.names(),
        "offers": sorted(ctx.registry.models),
        "default": ctx.registry.default,
        "compile": ctx.policy.compile,
        "metrics_port": metrics_port,
    }
    publish_worker(ctx.conn, ctx.name, info)


def memory_of(device: torch.device, cuda: Any = None) -> dict[str, int]:
    """The card's used and total bytes for a CUDA device (all processes on it), else this process's resident set."""
    if device.type == "cuda":
        cuda = cuda if cuda is not None else torch.cuda
        try:
            free, total = cuda.mem_get_info(device)
            return {"used": int(total - free), "total": int(total)}
        except Exception as exc:  # a description must not stop a worker because the driver hiccuped
            log.debug("GPU memory not readable: %s", exc)
            return {}
    return {"rss": _rss_bytes()}


def _rss_bytes() -> int:
    """Resident set size now (Linux /proc), else the peak that `getrusage` reports."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak if sys.platform == "darwin" else peak * 1024)
