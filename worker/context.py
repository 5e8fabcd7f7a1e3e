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
from dataclasses import dataclass
from typing import Any

import redis
import torch

from imagine.settings import Settings
from models import loader, registry
from models.registry import ModelEntry, Registry
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

    @classmethod
    def create(cls, settings: Settings, conn: redis.Redis, *, name: str | None = None) -> WorkerContext:
        """Build the shared resources (nothing is loaded yet: pipelines load on first use)."""
        if settings.torch_threads:
            torch.set_num_threads(settings.torch_threads)
        _quiet_library_progress_bars()
        device = loader.resolve_device(settings.device)
        dtype = loader.resolve_dtype(settings.dtype, device)
        reg = registry.load(settings.registry_file)

        def load(entry: ModelEntry) -> Any:
            return loader.load_pipeline(entry, data_dir=settings.data_dir, device=device, dtype=dtype)

        return cls(
            settings=settings,
            conn=conn,
            registry=reg,
            pipelines=PipelineCache(load, capacity=settings.pipeline_cache),
            device=device,
            dtype=dtype,
            name=name or f"{socket.gethostname()}:{id(conn):x}",
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
