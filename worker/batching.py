"""Cross-job batching: one sampler call for several waiting jobs that ask for the same kind of picture.

A small model on a CPU (and any model on a big GPU) does more images per second in one batched UNet call than in
several single ones. When a worker takes a job, `gather` claims up to `batch_max` images' worth of other jobs
waiting in the same queue that share its model, size, steps, sampler and guidance (their prompts, negative prompts,
seeds and counts may differ). `perform` then runs every member through the ordinary job function, each in its own
thread with RQ's own bookkeeping, so records, progress, retries and delivery stay per job and unchanged; only the
sampler call meets: `worker.rendezvous.call` (which the job uses instead of calling the pipeline) waits at a
`Rendezvous` until every member has arrived or left, and one thread runs one pipeline call for all of them. Each
image keeps its own generator, so its noise is exactly what it would have been alone; the batch changes only the
order of float sums, a difference of a grey level or so.

Waiting is bounded twice: `gather` takes only what is already waiting (plus at most `batch_wait_ms`, 0 by default),
so a lone job starts at once; and a member that does not reach the sampler within `PATIENCE_S` is left behind to
run alone. Companions come only from the head of the leader's own queue, up to the first job that cannot join:
the queue is in fair order (`imagine.fair`), and reaching past that job would start a flooding member's later jobs
before another member's first.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

import redis
from rq.job import Job
from rq.queue import Queue
from rq.utils import now

from imagine import fair, keys, progress
from imagine.contract import Done, JobSpec
from worker import allowed, context
from worker.rendezvous import Rendezvous

if TYPE_CHECKING:
    from worker.worker import ImagineWorker

log = logging.getLogger(__name__)

#: How many jobs `gather` looks at for companions, at most.
WINDOW = 64

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


@dataclass(frozen=True)
class BatchKey:
    """What jobs must share to be sampled together."""

    model: str
    width: int
    height: int
    steps: int
    sampler: str
    guidance: float


def key_of(ctx: Any, payload: Any) -> tuple[BatchKey, int] | None:
    """The batch key of a job's payload and its image count, or None when it cannot join a batch.

    Variations (image-to-image), LoRAs and clips run alone; so does anything that does not parse (it fails alone,
    with its own message).
    """
    try:
        spec = JobSpec.parse(payload, ctx.settings.limits())
        if spec.kind != "image" or spec.init_image is not None or spec.loras:
            return None
        entry = ctx.registry.resolve(spec.model, ctx.settings.data_dir)
        spec = spec.resolved(entry.name, entry.defaults)
    except Exception:  # refusals are the job's own business, reported when it runs
        return None
    assert spec.width and spec.height and spec.steps and spec.sampler and spec.guidance is not None
    return BatchKey(entry.name, spec.width, spec.height, spec.steps, spec.sampler, spec.guidance), spec.count


def _payload(job: Job) -> Any:
    try:
        if allowed.refusal(job) is not None:  # only the project's own jobs join (and run through) a batch
            return None
        return job.args[0] if job.func_name == keys.GENERATE_FUNC and len(job.args) == 1 else None
    except Exception:  # a job whose data does not load is left for RQ to fail
        return None


def gather(worker: ImagineWorker, leader: Job, queue: Queue) -> list[Job]:
    """Claim waiting jobs of `queue` that can share `leader`'s sampler call, up to `batch_max` images in all."""
    ctx = worker.ctx
    limit = ctx.settings.batch_max
    if limit <= 1:
        return []
    found = key_of(ctx, _payload(leader))
    if found is None:
        return []
    key, images = found
    deadline = time.monotonic() + ctx.settings.batch_wait_ms / 1000
    claimed: list[Job] = []
    seen: set[str] = {leader.id}
    while True:
        images, blocked = _claim_matching(worker, queue, key, images, limit, claimed, seen)
        if blocked or images >= limit or time.monotonic() >= deadline:
            break
        time.sleep(min(0.01, max(0.0, deadline - time.monotonic())))
    if claimed:
        log.info("job %s runs with %d more in one batch (%d images)", leader.id, len(claimed), images)
    return claimed


def _claim_matching(
    worker: ImagineWorker, queue: Queue, key: BatchKey, images: int, limit: int, claimed: list[Job], seen: set[str]
) -> tuple[int, bool]:
    """Claim matching jobs from the head of the queue; (images now, whether a job that cannot join blocks the way).

    Only the job next in line joins, one at a time: the queue is in fair order (`imagine.fair`), so reaching past
    a job that cannot join would start a flooding member's later jobs before another member's first. A job is
    claimed only if it is still next (`fair.pop` with `expected`: another worker may have taken it), onto RQ's
    intermediate list as RQ's dequeue does, so a crash before it starts is recovered as RQ would.
    """
    conn = worker.connection
    while len(seen) < WINDOW and images < limit:
        nxt = fair.head(conn, queue.name, 1)
        if not nxt:
            return images, False
        job_id = nxt[0]
        seen.add(job_id)
        job = fair.load_job(conn, job_id)
        found = key_of(worker.ctx, _payload(job)) if job is not None else None
        if job is None or found is None or found[0] != key or images + found[1] > limit:
            return images, True
        popped = fair.pop(conn, queue.name, expected=job_id)
        if popped is None:  # another worker took it first: look at the new head
            continue
        if popped[1] and fair.park_if_paused(conn, queue, job):  # as the worker's own dequeue does
            continue
        claimed.append(job)
        images += found[1]
    return images, False


# --- Running the members ----------------------------------------------------------------------------------------


@dataclass
class _Member:
    job: Job
    execution: Any = None
    value: Any = None
    exc_info: ExcInfo | None = None
    thread: threading.Thread | None = None


def perform(worker: ImagineWorker, leader: Job, queue: Queue, execution: Any, companions: list[Job]) -> bool:
    """Run `leader` (through RQ's usual `perform_job`, on this thread) and its companions (one thread each), with
    their sampler calls merged. Returns whether the leader succeeded, as `perform_job` does.

    The companions start once the leader has reached the sampler (or failed before it): by then the leader has
    loaded the model if it was not resident, so no two threads load it at once.
    """
    from worker.worker import ImagineWorker

    members = [_Member(job) for job in companions]
    for member in members:
        member.execution = worker.prepare_execution(member.job)

    def start_companions() -> None:
        for member in members:
            member.thread = threading.Thread(
                target=_run_member, args=(worker, queue, member, meeting), name=f"batch-{member.job.id}", daemon=True
            )
            member.thread.start()

    meeting = Rendezvous({leader.id, *(m.job.id for m in members)}, leader=leader.id, on_leader=start_companions)
    with _Heartbeats(worker, members):
        try:
            with meeting.joined(leader.id):
                ok = bool(super(ImagineWorker, worker).perform_job(leader, queue, execution))
        finally:
            for member in members:
                if member.thread is not None:
                    member.thread.join()
    for member in members:
        _finish(worker, queue, member)
    log.debug("batch of job %s: sampler calls of %s images", leader.id, meeting.batches)
    return ok


def _run_member(worker: ImagineWorker, queue: Queue, member: _Member, meeting: Rendezvous) -> None:
    """A companion's `perform_job`, minus what must happen on the main thread (finishing, see `_finish`)."""
    job = member.job
    with context.use(worker.ctx), meeting.joined(job.id):
        try:
            worker.prepare_job_execution(job, remove_from_intermediate_queue=True)
            job.started_at = now()
            member.value = job.perform()
        except BaseException:  # handed to RQ's failure path, as perform_job would
            exc_type, exc, tb = sys.exc_info()
            assert exc_type is not None and exc is not None
            member.exc_info = (exc_type, exc, tb)


def _finish(worker: ImagineWorker, queue: Queue, member: _Member) -> None:
    """RQ's success or failure path for a companion (result, registries, retry), then `Done` as for any job."""
    job = member.job
    try:
        if member.exc_info is None:
            worker._finalize_success(job, queue, member.execution, member.value)
            progress.publish(worker.connection, Done(job_id=job.id, ts=time.time()))
        else:
            worker._finalize_failure(job, queue, member.execution, member.exc_info)
    except redis.RedisError:
        log.exception("could not record the end of batched job %s; RQ retries it once its heartbeat runs out", job.id)


class _Heartbeats:
    """Keeps the companions' heartbeats fresh while they run (the leader's is `worker.worker._Heartbeat`'s)."""

    def __init__(self, worker: ImagineWorker, members: list[_Member]) -> None:
        self.worker = worker
        self.members = members
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="batch-heartbeats", daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(self.worker.ctx.settings.heartbeat_interval):
            for member in self.members:
                if member.thread is not None and member.thread.is_alive() and member.job.started_at is not None:
                    try:
                        self.worker.maintain_heartbeats(member.job, member.execution)
                    except redis.RedisError as exc:
                        log.warning("heartbeat for batched job %s failed: %s", member.job.id, exc)

    def __enter__(self) -> _Heartbeats:
        if self.members:
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()
