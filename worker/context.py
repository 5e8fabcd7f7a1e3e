"""What every job of a worker shares: settings, the Redis connection, the registry and the resident pipelines.

Created once when the worker starts and handed to each job through a context variable (the arq way: long-lived
resources are built at start-up, never per job, and there is no module-level `pipe`).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

import redis
import torch

from imagine.settings import Settings
from models import check, loader
from models.registry import Registry
from worker import gpu
from worker.metrics import WorkerMetrics
from worker.pipelines import PipelineCache

log = logging.getLogger(__name__)

_current: contextvars.ContextVar[WorkerContext] = contextvars.ContextVar("imagine_worker_context")


@dataclass
class WorkerContext:
    settings: Settings
    conn: redis.Redis
    registry: Registry
    pipelines: PipelineCache
    device: torch.device
    dtype: torch.dtype
    name: str
    #: GPU practice applied to every pipeline it loads (worker/gpu.py), and this worker's Prometheus metrics.
    policy: gpu.Policy = field(default_factory=gpu.Policy)
    metrics: WorkerMetrics = field(default_factory=WorkerMetrics)

    @classmethod
    def create(cls, settings: Settings, conn: redis.Redis, *, name: str | None = None) -> WorkerContext:
        """Build the shared resources (nothing is loaded yet: pipelines load on first use)."""
        if settings.torch_threads:
            torch.set_num_threads(settings.torch_threads)
        _quiet_library_progress_bars()
        policy = gpu.Policy.from_settings(settings)
        placer = gpu.Placer(policy, data_dir=settings.data_dir)
        device = placer.worker_device
        dtype = loader.resolve_dtype(settings.dtype, device)  # the worker's default; a model may differ
        # The same check as `imagine models check`: an invalid registry stops the worker with the table.
        reg = check.require_valid(settings.registry_file, settings.data_dir)
        metrics = WorkerMetrics()
        metrics.watch_gpu(device)
        return cls(
            settings=settings,
            conn=conn,
            registry=reg,
            pipelines=PipelineCache(placer.load, capacity=settings.pipeline_cache),
            device=device,
            dtype=dtype,
            name=name or f"{socket.gethostname()}:{id(conn):x}",
            policy=policy,
            metrics=metrics,
        )


def _quiet_library_progress_bars() -> None:
    """diffusers/transformers draw loading bars on stderr; a worker reports progress through Redis instead."""
    import diffusers.utils.logging
    import transformers.utils.logging

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()


def current() -> WorkerContext:
    """The context of the running worker; a job outside a worker must be run inside `use(ctx)`."""
    try:
        return _current.get()
    except LookupError:
        raise RuntimeError("no worker context: run jobs in an ImagineWorker or inside worker.context.use()") from None


@contextlib.contextmanager
def use(ctx: WorkerContext) -> Iterator[WorkerContext]:
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)
