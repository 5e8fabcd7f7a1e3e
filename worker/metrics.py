"""A worker's Prometheus metrics, its `/metrics` endpoint, and the deployment-wide counts it keeps in Redis.

Each worker process serves its own registry (wait time, job duration by model and kind, failures by cause, model
load time, GPU memory when on CUDA). The same outcomes are also counted in Redis (`imagine:stats`) with the
latest failures (`imagine:failures`), so the bot's `/metrics` and `imagine status` see the whole deployment
without scraping every worker. Labels come from the registry and a fixed list of causes, never from raw payload
text, so a hostile payload cannot create unbounded series.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import redis
import torch
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from imagine import keys

log = logging.getLogger(__name__)

KINDS = ("image", "clip")
#: Exception class name -> failure cause (names, so this module needs no import of the job module).
CAUSES: dict[str, str] = {
    "OutOfMemory": "out_of_memory",
    "OutOfMemoryError": "out_of_memory",
    "SpecError": "bad_request",
    "UnknownModel": "unknown_model",
    "SourceGone": "source_gone",
    "FamilyMismatch": "model_error",
    "JobTimeoutException": "timeout",
    "JobRefused": "refused",
}
WAIT_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800)
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)


def cause_of(exc: BaseException) -> str:
    """A short, fixed label for why a job failed (the first known class in its MRO; `error` otherwise)."""
    for cls in type(exc).__mro__:
        if cls.__name__ in CAUSES:
            return CAUSES[cls.__name__]
    return "error"


class WorkerMetrics:
    """One worker's metrics, in a registry of its own (so tests and several workers in a process stay apart)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.jobs = Counter(
            "imagine_jobs",
            "Job attempts finished, by model, kind and outcome",
            ["model", "kind", "outcome"],
            registry=r,
        )
        self.failures = Counter(
            "imagine_job_failures",
            "Failed job attempts, by model, kind and cause",
            ["model", "kind", "cause"],
            registry=r,
        )
        self.wait = Histogram(
            "imagine_job_wait_seconds", "Seconds from enqueue to start", ["kind"], buckets=WAIT_BUCKETS, registry=r
        )
        self.duration = Histogram(
            "imagine_job_duration_seconds",
            "Seconds a job ran (load, sampling, encoding, delivery)",
            ["model", "kind"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.load = Histogram("imagine_model_load_seconds", "Seconds to load a model", ["model"], registry=r)
        self.info = Gauge("imagine_worker_info", "This worker (always 1)", ["worker", "device"], registry=r)
        self._started: dict[str, float] = {}
        self._server: Any = None

    # --- hooks called by the job ---

    def started(self, job_id: str, kind: str, enqueued_at: datetime | None) -> None:
        self._started[job_id] = time.perf_counter()
        if enqueued_at is not None:
            when = enqueued_at if enqueued_at.tzinfo else enqueued_at.replace(tzinfo=UTC)
            self.wait.labels(kind=_kind(kind)).observe(max(0.0, time.time() - when.timestamp()))

    def done(self, conn: redis.Redis, job_id: str, model: str, kind: str) -> None:
        self._finish(job_id, model, kind, "done")
        _count(conn, f"done|{_kind(kind)}|{model}")

    def failed(
        self,
        conn: redis.Redis,
        job_id: str,
        model: str,
        kind: str,
        exc: BaseException,
        *,
        error: str,
        retrying: bool,
        worker: str,
    ) -> str:
        cause = cause_of(exc)
        outcome = "retrying" if retrying else "failed"
        self._finish(job_id, model, kind, outcome)
        self.failures.labels(model=model, kind=_kind(kind), cause=cause).inc()
        try:
            with conn.pipeline() as pipe:
                pipe.hincrby(keys.STATS, f"{outcome}|{_kind(kind)}|{model}", 1)
                pipe.hincrby(keys.STATS, f"cause|{cause}", 1)
                record: dict[str, Any] = {"job_id": job_id, "model": model, "kind": _kind(kind), "cause": cause}
                record["error"] = error
                record.update(worker=worker, retrying=retrying, ts=time.time())
                pipe.lpush(keys.FAILURES, json.dumps(record))
                pipe.ltrim(keys.FAILURES, 0, keys.FAILURES_KEPT - 1)
                pipe.execute()
        except redis.RedisError as exc_redis:  # counting must never fail a job
            log.warning("could not record a failure in Redis: %s", exc_redis)
        return cause

    def loaded(self, model: str, seconds: float) -> None:
        self.load.labels(model=model).observe(seconds)

    def _finish(self, job_id: str, model: str, kind: str, outcome: str) -> None:
        self.jobs.labels(model=model, kind=_kind(kind), outcome=outcome).inc()
        began = self._started.pop(job_id, None)
        if began is not None:
            self.duration.labels(model=model, kind=_kind(kind)).observe(time.perf_counter() - began)

    # --- the endpoint ---

    def watch_gpu(self, device: torch.device, cuda: Any = None) -> None:
        """Report the card's memory at every scrape (only for a CUDA device)."""
        if device.type == "cuda":
            self.registry.register(GpuMemory(device, cuda if cuda is not None else torch.cuda))

    def serve(self, host: str, port: int) -> int | None:
        """Serve `/metrics` from a thread; returns the port, or None when it could not bind (the worker goes on)."""
        try:
            server, _thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            log.warning("worker /metrics not served on %s:%d: %s", host, port, exc)
            return None
        self._server = server
        bound = int(server.server_address[1])
        log.info("worker /metrics on http://%s:%d/metrics", host, bound)
        return bound

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class GpuMemory(Collector):
    """`imagine_gpu_memory_bytes{device, kind}`: allocated, reserved, peak, free and total, read at scrape time."""

    def __init__(self, device: torch.device, cuda: Any) -> None:
        self.device = device
        self.cuda = cuda

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "imagine_gpu_memory_bytes", "GPU memory of this worker's card", labels=["device", "kind"]
        )
        name = str(self.device)
        try:
            family.add_metric([name, "allocated"], float(self.cuda.memory_allocated(self.device)))
            family.add_metric([name, "reserved"], float(self.cuda.memory_reserved(self.device)))
            family.add_metric([name, "peak"], float(self.cuda.max_memory_allocated(self.device)))
            free, total = self.cuda.mem_get_info(self.device)
            family.add_metric([name, "free"], float(free))
            family.add_metric([name, "total"], float(total))
        except Exception as exc:  # a scrape must not fail because the driver hiccuped
            log.debug("GPU memory not readable: %s", exc)
        yield family


def labels_of(payload: Mapping[str, Any], models: Mapping[str, Any], default: str) -> tuple[str, str]:
    """(model, kind) labels for a raw payload: a registry name, the default, or "unknown"; a known kind."""
    name = payload.get("model") if isinstance(payload, Mapping) else None
    model = default if name is None else name if isinstance(name, str) and name in models else "unknown"
    kind = payload.get("kind", "image") if isinstance(payload, Mapping) else "image"
    return model, _kind(kind)


def _kind(kind: object) -> str:
    return kind if isinstance(kind, str) and kind in KINDS else "unknown"


def _count(conn: redis.Redis, field: str) -> None:
    try:
        conn.hincrby(keys.STATS, field, 1)
    except redis.RedisError as exc:
        log.warning("could not count a job in Redis: %s", exc)


def publish_worker(conn: redis.Redis, name: str, info: Mapping[str, Any]) -> None:
    """Describe this worker for `imagine status` (device, dtype, models, metrics port); JSON values."""
    try:
        key = keys.worker_info(name)
        with conn.pipeline() as pipe:
            pipe.hset(key, mapping={k: json.dumps(v) for k, v in info.items()})
            pipe.expire(key, keys.WORKER_INFO_TTL)
            pipe.execute()
    except redis.RedisError as exc:
        log.warning("could not publish worker info: %s", exc)
