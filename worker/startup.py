"""What a worker does before its first job: serve `/metrics`, load and warm up its models, say who it is.

The registry itself is checked earlier, when the worker's context is created (`models.check.require_valid`): a
worker never starts on an invalid registry. With `IMAGINE_COMPILE=true` the default model (or each `--preload`
one) is compiled and run once here, so the compilation never lands on a member's job.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Sequence
from typing import Any

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
    """Publish this worker's device, precision, resident models and metrics port for `imagine status`."""
    info: dict[str, Any] = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "device": str(ctx.device),
        "dtype": str(ctx.dtype).removeprefix("torch."),
        "models": ctx.pipelines.names(),
        "default": ctx.registry.default,
        "compile": ctx.policy.compile,
        "metrics_port": metrics_port,
    }
    publish_worker(ctx.conn, ctx.name, info)
