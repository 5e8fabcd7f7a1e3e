"""Finding jobs whose worker died, within a bounded time, and retrying them; posting what Discord refused earlier.

RQ notices a dead worker's job only when some worker cleans its registries, and that has two gaps for us:

- a worker cleans only between jobs or between blocking waits for one (`worker_ttl - 15` s), so with every other
  worker busy on a long job, or idle in a 45 s wait, a dead worker's job can sit unnoticed for minutes;
- the clean-up lock lives 899 s and is not released when the cleaner dies or Redis drops mid-clean, so one worker
  killed at the wrong moment stops every clean-up for 15 minutes.

So every worker runs a `Reaper` thread that sweeps every `maintenance_interval` seconds whatever the worker is
doing, under a lock (`imagine:reaper:<queue>`) that simply expires after one interval. A sweep runs RQ's own
registry clean-up (an abandoned job is retried if its budget allows, else failed), tells the member when a job
has failed for good, and tries the outbox's due messages again. A killed worker's job is therefore back on the
queue within `heartbeat_ttl + maintenance_interval` seconds of the worker's last heartbeat (45 s by default), as
long as any worker is alive to sweep.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import redis
from rq import worker_registration
from rq.exceptions import AbandonedJobError
from rq.job import Job, JobStatus
from rq.job_lifecycle import record_job_failure
from rq.queue import Queue
from rq.registry import clean_registries
from rq.serializers import JSONSerializer
from rq.utils import now as utcnow

from imagine import keys, progress
from imagine.contract import Failed, JobSpec
from worker import delivery, outbox
from worker.discord_rest import DiscordError
from worker.fair import FairQueue
from worker.targets import Target

log = logging.getLogger(__name__)

#: What a member reads when every attempt of their job died with its worker.
GAVE_UP = "the worker making this image stopped unexpectedly ({tries}); please try again later"
OUTBOX_LOCK = "outbox"
#: Statuses of a job that has ended: nothing to recover.
DONE = {JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED}


def sweep(ctx: Any, queue_names: Sequence[str], name: str) -> None:
    """One maintenance pass over `queue_names` and the outbox (skipped where another worker just did it).

    `ctx` needs only `conn`, `settings` and `name` (a `WorkerContext`, or a light stand-in before it exists).
    """
    conn: redis.Redis = ctx.conn
    interval_ms = max(1000, int(ctx.settings.maintenance_interval * 1000))
    for queue_name in queue_names:
        if not conn.set(keys.reaper_lock(queue_name), name, nx=True, px=interval_ms):
            continue
        queue = FairQueue(queue_name, connection=conn, serializer=JSONSerializer)  # a retry rings the workers' bell
        abandoned: list[tuple[Job, bool]] = []

        def note(job: Job, exc_type: type[BaseException], *_: Any, found: list[tuple[Job, bool]] = abandoned) -> bool:
            if exc_type is AbandonedJobError:
                found.append((job, not job.should_retry))  # called before RQ decides on the retry
            return True

        clean_registries(queue, exception_handlers=[note])
        worker_registration.clean_worker_registry(queue)
        _orphans(ctx, queue, abandoned)
        for job, final in abandoned:
            after_abandoned(ctx, job, final=final)
    if conn.set(keys.reaper_lock(OUTBOX_LOCK), name, nx=True, px=interval_ms) and conn.zcard(keys.OUTBOX):
        rest = delivery.rest_client(ctx)
        try:
            counts = outbox.retry_due(ctx, rest)
        finally:
            rest.close()
        if any(counts.values()):
            log.info("outbox pass: %s", counts)


def _orphans(ctx: Any, queue: Queue, abandoned: list[tuple[Job, bool]]) -> None:
    """Jobs a worker took off the queue but died before starting (RQ's intermediate list, not yet in the started
    registry). A live worker starts a job within milliseconds of taking it, so one still there after `heartbeat_ttl`
    is orphaned: it is retried (or failed) now, rather than after RQ's own minute."""
    started = queue.started_job_registry
    patience = timedelta(seconds=ctx.settings.heartbeat_ttl)
    intermediate = queue.intermediate_queue
    for job_id in intermediate.get_job_ids():
        if job_id in started:
            continue
        job = queue.fetch_job(job_id)
        if job is None or job.get_status(refresh=False) in DONE:
            intermediate.remove(job_id)
            continue
        if intermediate.set_first_seen(job_id):
            continue
        first = intermediate.get_first_seen(job_id)
        if first is None or utcnow() - first < patience:
            continue
        abandoned.append((job, not job.should_retry))  # before the retry below spends one
        with ctx.conn.pipeline() as pipe:
            if job.should_retry:
                job.retry(queue, pipe)
            else:
                record_job_failure(job, "its worker died after taking it from the queue", pipe)
            pipe.lrem(intermediate.key, 1, job_id)
            pipe.execute()


def after_abandoned(ctx: Any, job: Job, *, final: bool) -> None:
    """Record that `job` lost its worker; when no retry is left, tell the member (once) that it failed."""
    record = keys.job(job.id)
    attempts = int(ctx.conn.hget(record, "attempts") or 0)
    attempts = attempts or 1
    error = GAVE_UP.format(tries=f"{attempts} tries" if attempts > 1 else "1 try")
    mapping = {"abandoned_at": repr(time.time())}
    if final:  # a retry sets its own status when it starts (it may have already)
        mapping.update(status="failed", error=error)
    with ctx.conn.pipeline() as pipe:
        pipe.hincrby(record, "abandoned", 1)
        pipe.hset(record, mapping=mapping)
        pipe.execute()
    log.warning("job %s lost its worker (%s); %s", job.id, job.worker_name, "giving up" if final else "retrying it")
    progress.publish(ctx.conn, Failed(job_id=job.id, error=error, retrying=not final, ts=time.time()))
    if not final:
        return
    try:
        payload = job.args[0]
    except (IndexError, TypeError):
        return
    try:
        reachable = Target.of(JobSpec.model_validate(payload)).reachable
    except ValueError:
        reachable = False
    if not reachable:  # nobody on Discord waits for it (`imagine generate` reads the Failed event)
        return
    rest = delivery.rest_client(ctx)
    try:
        outbox.send_once(ctx, rest, outbox.failure_parcel(job.id, payload, error))
    finally:
        rest.close()


class Reaper(threading.Thread):
    """Sweeps every `maintenance_interval` seconds for as long as its worker runs (see the module docstring).

    Started before the worker loads its models, so a worker that is still loading already looks after the others.
    """

    def __init__(self, ctx: Any, queue_names: Sequence[str], name: str) -> None:
        super().__init__(name=f"reaper-{name}", daemon=True)
        self.ctx, self.queue_names, self.worker_name = ctx, list(queue_names), name
        self.stopped = threading.Event()

    def run(self) -> None:
        interval = float(self.ctx.settings.maintenance_interval)
        while True:
            try:
                sweep(self.ctx, self.queue_names, self.worker_name)
            except (redis.RedisError, DiscordError) as exc:  # Redis or Discord away for a moment: next sweep
                log.warning("maintenance sweep failed: %s", exc)
            except Exception:  # the reaper must outlive any one bad job or record; the next sweep tries again
                log.exception("maintenance sweep failed")
            if self.stopped.wait(interval):
                return

    def stop(self) -> None:
        self.stopped.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=30)
