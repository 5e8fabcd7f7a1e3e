"""The worker process: an RQ SimpleWorker that keeps its pipelines resident and heartbeats while it works.

RQ's default Worker forks for every job, which would throw away a loaded model (and CUDA does not survive a fork);
SimpleWorker runs jobs in its own process. A SimpleWorker sends no heartbeat while a job runs, so a worker killed
mid-job would hold its job for the whole job timeout; this one heartbeats from a thread every few seconds with a
short TTL instead, and a `worker.reaper.Reaper` thread sweeps for abandoned jobs every `maintenance_interval`
seconds whatever the worker is doing, so a dead worker's job is noticed within `heartbeat_ttl +
maintenance_interval` seconds and retried by another worker.

Redis going away is survived at two levels: each command retries with backoff (`imagine.redis.client`), and when
RQ's loop gives up anyway (a restart longer than those retries), `run` waits for Redis with backoff and starts the
loop again under a new worker name; the job that was running is retried once its heartbeat runs out.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
import threading
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import redis
from redis.client import Pipeline
from rq import SimpleWorker
from rq.exceptions import StopRequested
from rq.executions import Execution
from rq.job import Job
from rq.queue import Queue
from rq.serializers import JSONSerializer
from rq.utils import now as utcnow

from imagine import fair, keys, progress
from imagine import redis as imagine_redis
from imagine.contract import Done
from imagine.settings import Settings
from worker import allowed, batching, context, reaper, safety
from worker.context import WorkerContext
from worker.fair import FairQueue

log = logging.getLogger(__name__)


class ImagineWorker(SimpleWorker):
    """Runs jobs in-process with a shared `WorkerContext` (settings, Redis, registry, resident pipelines)."""

    #: Parks a paused server's job instead of running it (see `worker.fair`).
    queue_class = FairQueue

    def __init__(self, queues: Sequence[str], *, ctx: WorkerContext, sweep: bool = True, **kwargs: Any) -> None:
        settings = ctx.settings
        super().__init__(
            list(queues),
            name=ctx.name,
            connection=ctx.conn,
            serializer=JSONSerializer,
            default_result_ttl=settings.result_ttl,
            worker_ttl=settings.worker_ttl,
            maintenance_interval=settings.maintenance_interval,
            job_monitoring_interval=settings.heartbeat_interval,
            # RQ's description of a job is its call with arguments: it would log the interaction token.
            log_job_description=False,
            **kwargs,
        )
        self.ctx = ctx
        self.jobs_done = 0
        #: Run a reaper thread while working (`run` starts one earlier itself, before the models load).
        self.sweep = sweep

    @property
    def stop_requested(self) -> bool:
        """SIGTERM or Ctrl-C arrived (RQ records the date; its flag is set only when a job was running)."""
        return self._stop_requested or self._shutdown_requested_date is not None

    def work(self, *args: Any, **kwargs: Any) -> bool:
        """RQ's loop, with the reaper thread sweeping alongside it."""
        sweeper = reaper.Reaper(self.ctx, self.queue_names(), self.name) if self.sweep else None
        if sweeper is not None:
            sweeper.start()
        try:
            return super().work(*args, **kwargs)
        finally:
            if sweeper is not None:
                sweeper.stop()

    def clean_registries(self) -> None:
        """RQ's clean-up, under a lock that expires after one interval (see `worker.reaper`)."""
        reaper.sweep(self.ctx, self.queue_names(), self.name)
        self.last_cleaned_at = utcnow()  # type: ignore[assignment]  # RQ annotates it as None

    def heartbeat(self, timeout: int | None = None, pipeline: Pipeline | None = None) -> None:
        """RQ's worker heartbeat, its three commands in one round trip.

        RQ's loop sends one before and after every dequeue and after every job, each as three round trips of its
        own: nine per job, a few milliseconds of a small model's job on a busy machine.
        """
        if pipeline is not None:
            super().heartbeat(timeout, pipeline=pipeline)
            return
        with self.connection.pipeline(transaction=False) as pipe:
            super().heartbeat(timeout, pipeline=pipe)
            pipe.execute()

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        """Short, because `perform_job` keeps it fresh from a thread for as long as the job runs."""
        return self.ctx.settings.heartbeat_ttl

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        self.jobs_done += 1
        refused = allowed.refusal(job)  # before RQ imports anything the job names
        if refused is not None:
            allowed.refuse(self, job, queue, execution, refused)
            return False
        with context.use(self.ctx), _Heartbeat(self, job, execution):
            companions = batching.gather(self, job, queue)  # waiting jobs that can share its sampler call
            if companions:
                self.jobs_done += len(companions)
                ok = batching.perform(self, job, queue, execution, companions)
            else:
                ok = super().perform_job(job, queue, execution)
        if ok:
            # Only now is the result stored: a reader that sees `done` can fetch it at once.
            progress.publish(self.connection, Done(job_id=job.id, ts=time.time()))
        return ok


class _Heartbeat:
    """A thread that renews the worker's, the job's and the execution's heartbeats until the job ends."""

    def __init__(self, worker: ImagineWorker, job: Job, execution: Execution) -> None:
        self.worker = worker
        self.job = job
        self.execution = execution
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"heartbeat-{job.id}", daemon=True)

    def _run(self) -> None:
        interval = self.worker.ctx.settings.heartbeat_interval
        while not self.stop.wait(interval):
            try:
                self.worker.maintain_heartbeats(self.job, self.execution)
            except redis.RedisError as exc:  # Redis away for a moment: the next beat may get through
                log.warning("heartbeat for job %s failed: %s", self.job.id, exc)

    def __enter__(self) -> _Heartbeat:
        self.thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop.set()
        self.thread.join()


def worker_name() -> str:
    """Unique among live workers (RQ requires it), and says where the worker runs."""
    return f"{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(2)}"


def advertise(ctx: WorkerContext) -> None:
    """Publish the registry's models (names, defaults, availability) for the bot, which never imports `models`."""
    data_dir, enabled = ctx.settings.data_dir, ctx.settings.safety_checker
    infos = [
        info.model_copy(
            update={
                "age_restricted_only": safety.age_restricted_only(
                    ctx.registry.models[info.name], data_dir, enabled=enabled
                )
            }
        )
        for info in ctx.registry.infos(data_dir)
    ]
    if infos:
        ctx.conn.hset(keys.MODELS, mapping={info.name: info.model_dump_json() for info in infos})


def run(
    settings: Settings,
    conn: redis.Redis,
    *,
    queues: Sequence[str] = (keys.IMAGE_QUEUE,),
    burst: bool = False,
    preload: Sequence[str] = (),
    max_jobs: int | None = None,
    logging_level: str = "INFO",
) -> bool:
    """Start a worker on `queues` and work until stopped (or, with `burst`, until they are empty)."""
    ctx = WorkerContext.create(settings, conn, name=worker_name())
    # Sweeping starts now, not once the models are loaded: a worker loading for a minute still notices others die.
    sweeper = reaper.Reaper(ctx, queues, ctx.name)
    sweeper.start()
    try:
        return _run(ctx, queues, burst=burst, preload=preload, max_jobs=max_jobs, logging_level=logging_level)
    finally:
        sweeper.stop()


def _run(
    ctx: WorkerContext,
    queues: Sequence[str],
    *,
    burst: bool,
    preload: Sequence[str],
    max_jobs: int | None,
    logging_level: str,
) -> bool:
    conn = ctx.conn
    wait_for_redis(conn)
    imagine_redis.check_server(conn)  # at start-up: warn when the server may evict or forget jobs
    fair.upgrade(conn)  # a paused server's jobs parked by the scheduler before this one
    advertise(ctx)
    # /metrics, preloads and (with IMAGINE_COMPILE) the warm-up, before the first job: see worker/startup.py.
    from worker import startup

    startup.prepare(ctx, preload, serve_metrics=not burst)
    worked = False
    while True:
        worker = ImagineWorker(queues, ctx=ctx, sweep=False)
        log.info("worker %s on %s (device %s, %s)", ctx.name, ", ".join(queues), ctx.device, ctx.dtype)
        try:
            worked = worker.work(burst=burst, max_jobs=max_jobs, logging_level=logging_level) or worked
        except redis.RedisError as exc:  # RQ's own teardown talks to Redis too
            log.warning("worker %s stopped on a Redis error: %s", ctx.name, exc)
        except StopRequested:
            return worked
        if burst or worker.stop_requested or (max_jobs is not None and worker.jobs_done >= max_jobs):
            return worked
        # RQ's loop gave up (Redis gone longer than a command's retries): wait for it, then work on.
        log.warning("worker %s lost its loop; waiting for Redis to start again", ctx.name)
        try:
            wait_for_redis(conn)
        except StopRequested:
            return worked
        ctx.name = worker_name()  # the old name may still look alive to RQ until its key expires


def wait_for_redis(conn: redis.Redis, *, max_wait_s: float = 30.0) -> None:
    """Block until Redis answers, backing off from 0.5 s to `max_wait_s` with jitter (for ever: it is Redis)."""
    delay = 0.5
    while True:
        try:
            conn.ping()
            return
        except redis.RedisError as exc:
            wait = delay * random.uniform(0.5, 1.5)
            log.warning("Redis is not answering (%s); trying again in %.1f s", exc, wait)
            time.sleep(wait)
            delay = min(max_wait_s, delay * 2)
