"""Put a job on the queue and follow it to its result: the one path that the bot and `imagine generate` share.

Jobs are enqueued by the function's dotted name (`worker.jobs.generate`) with RQ's JSONSerializer, so this module
and its callers never import torch, and the payload in Redis is plain JSON, without the interaction token (which
waits for the worker in its own 15-minute key: `imagine.tokens`).
"""

from __future__ import annotations

import json
import logging
import secrets
import time
import uuid
from collections.abc import Callable

import redis
from rq import Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from imagine import admission, fair, keys, progress, tokens
from imagine.contract import MAX_SEED, Done, Failed, JobResult, JobSpec
from imagine.fair_queue import FairQueue
from imagine.progress import Event
from imagine.settings import Settings

log = logging.getLogger(__name__)


class JobFailed(RuntimeError):
    """A job ended without a result; `error` is fit to show the person who asked."""

    def __init__(self, job_id: str, error: str) -> None:
        super().__init__(f"job {job_id} failed: {error}")
        self.job_id = job_id
        self.error = error


def image_queue(conn: redis.Redis, name: str = keys.IMAGE_QUEUE) -> FairQueue:
    """The RQ queue for image jobs in fair order (`imagine.fair`), with the JSON serializer (every queue of ours)."""
    return FairQueue(name, connection=conn, serializer=JSONSerializer)


def new_job_id() -> str:
    return uuid.uuid4().hex


def enqueue(
    conn: redis.Redis,
    spec: JobSpec,
    settings: Settings,
    *,
    job_id: str | None = None,
    queue_name: str = keys.IMAGE_QUEUE,
) -> Job:
    """Validate `spec` against the limits, fix its seed, record it and enqueue it; return the RQ job.

    Idempotent per `job_id`: enqueueing an id that is already queued, running or done returns that job.
    Raises `imagine.contract.SpecError` (naming the field) when the spec breaks the limits, and
    `imagine.admission.Refused` (naming the limit) when its server's rules or limits turn it down, or when Redis
    is at its `maxmemory` (it refuses writes and evicts nothing: the jobs already queued are safe).
    """
    try:
        return _enqueue(conn, spec, settings, job_id, queue_name)
    except redis.exceptions.OutOfMemoryError:
        log.warning("Redis is at its maxmemory: a new job was refused")
        raise admission.Refused("redis_memory", STORAGE_FULL) from None


#: What a member reads when Redis is full.
STORAGE_FULL = "the bot's storage is full right now, so it cannot take new jobs; please try again in a few minutes."


def _enqueue(conn: redis.Redis, spec: JobSpec, settings: Settings, job_id: str | None, queue_name: str) -> Job:
    spec = JobSpec.parse(spec.payload(), settings.limits())
    if spec.seed is None:
        spec = spec.with_seed(secrets.randbelow(MAX_SEED + 1))
    job_id = keys.check_job_id(job_id or new_job_id())
    record = keys.job(job_id)
    if not conn.hsetnx(record, "spec", json.dumps(spec.public())):
        try:
            existing = Job.fetch(job_id, connection=conn, serializer=JSONSerializer)
            log.info("job %s was already enqueued; not enqueueing it again", job_id)
            return existing
        except NoSuchJobError:
            conn.hset(record, "spec", json.dumps(spec.public()))
    with conn.pipeline() as pipe:
        pipe.hset(record, mapping={"status": "queued", "queue": queue_name, "enqueued_at": repr(time.time())})
        pipe.expire(record, settings.record_ttl)
        pipe.execute()
    rq_queue = image_queue(conn, queue_name)
    requester = spec.requester
    if requester is not None and requester.interaction_token is not None:
        # In its own expiring key, before a worker can see the job; never in the job's data (see imagine.tokens).
        tokens.keep(conn, job_id, requester.interaction_token.get_secret_value(), requester.interaction_id)
    job = rq_queue.create_job(
        keys.GENERATE_FUNC,
        args=(spec.public(),),
        job_id=job_id,
        # A retried job (its worker died, or it hit an error) goes to the front: it has waited its turn already.
        retry=Retry(max=settings.job_retries, enqueue_at_front=True) if settings.job_retries else None,
        timeout=settings.job_timeout,
        result_ttl=settings.result_ttl,
        failure_ttl=settings.record_ttl,
        # RQ's default description is the call with its arguments, which would put the token in logs.
        description=f"{spec.kind} {job_id}",
    )
    try:
        # The server's rules and limits, then the job's fair place in the queue (see imagine.fair).
        admission.admit(conn, rq_queue, job, spec, settings)
    except admission.Refused:
        conn.delete(record, keys.token(job_id))
        raise
    log.info("enqueued job %s on %s", job_id, queue_name)
    return job


def position(conn: redis.Redis, job_id: str) -> int | None:
    """0-based place of a waiting job in its queue (an estimate far back: see `imagine.fair.places`), or None when
    it is not waiting (running, done, unknown) or its server is paused."""
    queue_name = conn.hget(keys.job(keys.check_job_id(job_id)), "queue")
    name = queue_name.decode() if isinstance(queue_name, bytes) else queue_name
    return fair.position(conn, name or keys.IMAGE_QUEUE, job_id)


def fetch_result(conn: redis.Redis, job_id: str) -> JobResult | None:
    """The result of a finished job, or None when there is none (not finished, failed, or expired)."""
    try:
        job = Job.fetch(job_id, connection=conn, serializer=JSONSerializer)
    except NoSuchJobError:
        return None
    value = job.return_value()
    return JobResult.model_validate(value) if value is not None else None


def wait(
    conn: redis.Redis,
    job_id: str,
    *,
    timeout: float,
    on_event: Callable[[Event], None] | None = None,
    poll_s: float = 1.0,
) -> JobResult:
    """Follow a job's progress events until its result; raise `JobFailed`, or `TimeoutError` after `timeout`.

    Between events it also checks RQ's own status, so a job whose worker died without a word still ends here.
    """
    deadline = time.monotonic() + timeout
    after = "0-0"
    while True:
        block = max(1, int(min(poll_s, deadline - time.monotonic()) * 1000))
        events = progress.read(conn, job_id, after, block_ms=block)
        for entry_id, event in events:
            after = entry_id
            if on_event is not None:
                on_event(event)
            if isinstance(event, Done):
                return _result_or_fail(conn, job_id)
            if isinstance(event, Failed) and not event.retrying:
                raise JobFailed(job_id, event.error)
        if not events:
            status = _status(conn, job_id)
            if status == JobStatus.FINISHED:
                return _result_or_fail(conn, job_id)
            if status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
                raise JobFailed(job_id, "the job stopped before it finished")
            if status is None:
                raise JobFailed(job_id, "the job is no longer known to the queue")
        if time.monotonic() >= deadline:
            raise TimeoutError(f"job {job_id} did not finish within {timeout:g} s")


def _status(conn: redis.Redis, job_id: str) -> JobStatus | None:
    try:
        return Job.fetch(job_id, connection=conn, serializer=JSONSerializer).get_status()
    except NoSuchJobError:
        return None


def _result_or_fail(conn: redis.Redis, job_id: str) -> JobResult:
    result = fetch_result(conn, job_id)
    if result is None:
        raise JobFailed(job_id, "the result has expired")
    return result
