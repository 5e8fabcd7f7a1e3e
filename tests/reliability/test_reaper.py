"""worker/reaper.py in process, against a real Redis: a job whose worker "died" (taken and started by RQ's own
calls, then left with its heartbeat run out) is retried at the front, or failed for good with the reason, by one
sweep; a job taken off the queue by a worker that died before starting it is recovered after `heartbeat_ttl`
instead of RQ's minute; and the sweep's lock lasts one interval, not RQ's fifteen minutes."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest
import redis
from rq.job import Job
from rq.serializers import JSONSerializer

from imagine import keys, queue
from imagine.contract import Failed, JobSpec
from tests.helpers import events_of, make_settings
from worker import reaper
from worker.worker import ImagineWorker


def worker_for(ctx: Any, conn: redis.Redis, redis_url: str) -> ImagineWorker:
    """An ImagineWorker on the test Redis with the tests' quick settings (not started: nothing runs a job)."""
    settings = make_settings(redis_url, ctx.settings.data_dir)
    return ImagineWorker([keys.IMAGE_QUEUE], ctx=dataclasses.replace(ctx, settings=settings, conn=conn))


def sweep(worker: ImagineWorker) -> None:
    reaper.sweep(worker.ctx, worker.queue_names(), worker.name)


def take_and_die(worker: ImagineWorker) -> Job:
    """What a worker does up to running the job, then nothing: its heartbeat simply runs out."""
    taken = worker.queue_class.dequeue_any(worker.queues, None, connection=worker.connection, serializer=JSONSerializer)
    assert taken is not None
    job, _ = taken
    execution = worker.prepare_execution(job)
    worker.prepare_job_execution(job, remove_from_intermediate_queue=True)
    registry = worker.queues[0].started_job_registry
    worker.connection.zadd(registry.key, {f"{job.id}:{execution.id}": time.time() - 1})  # heartbeat expired
    return job


def enqueue(conn: redis.Redis, ctx: Any, prompt: str, retries: int) -> Job:
    settings = make_settings("redis://unused", ctx.settings.data_dir, job_retries=retries)
    return queue.enqueue(conn, JobSpec(prompt=prompt, model="tiny", steps=2, seed=1), settings)


def test_an_abandoned_job_with_retries_left_goes_back_to_the_front(conn: redis.Redis, redis_url: str, ctx: Any) -> None:
    worker = worker_for(ctx, conn, redis_url)
    first = enqueue(conn, ctx, "abandoned", retries=1)
    job = take_and_die(worker)
    assert job.id == first.id
    waiting = enqueue(conn, ctx, "waiting", retries=1)
    sweep(worker)
    assert queue.image_queue(conn).get_job_ids() == [first.id, waiting.id]  # the retry is first in line
    assert Job.fetch(first.id, connection=conn, serializer=JSONSerializer).retries_left == 0
    failed = [e for e in events_of(conn, first.id) if isinstance(e, Failed)]
    assert len(failed) == 1 and failed[0].retrying
    assert conn.hget(keys.job(first.id), "abandoned") == b"1"
    assert conn.hget(keys.job(first.id), "status") == b"queued"  # left for the retry to set
    # The sweep's lock expires after one interval: a sweeper killed while holding it blocks nobody for long.
    lock_ms = conn.pttl(keys.reaper_lock(keys.IMAGE_QUEUE))
    assert 0 < lock_ms <= worker.ctx.settings.maintenance_interval * 1000


def test_an_abandoned_job_out_of_retries_fails_with_its_reason(conn: redis.Redis, redis_url: str, ctx: Any) -> None:
    worker = worker_for(ctx, conn, redis_url)
    job = enqueue(conn, ctx, "dies for good", retries=0)
    take_and_die(worker)
    sweep(worker)
    with pytest.raises(queue.JobFailed, match="stopped unexpectedly"):
        queue.wait(conn, job.id, timeout=5)
    assert conn.hget(keys.job(job.id), "status") == b"failed"
    assert Job.fetch(job.id, connection=conn, serializer=JSONSerializer).get_status() == "failed"


def test_a_job_taken_by_a_worker_that_died_before_starting_is_recovered(
    conn: redis.Redis, redis_url: str, ctx: Any
) -> None:
    worker = worker_for(ctx, conn, redis_url)
    job = enqueue(conn, ctx, "taken, never started", retries=2)
    q = worker.queues[0]
    assert worker.queue_class.dequeue_any(worker.queues, None, connection=conn, serializer=JSONSerializer)
    assert q.intermediate_queue.get_job_ids() == [job.id]  # then the worker died
    sweep(worker)  # first sight: not yet (a live worker would start it within milliseconds)
    assert q.intermediate_queue.get_job_ids() == [job.id]
    conn.set(q.intermediate_queue.get_first_seen_key(job.id), time.time() - ctx.settings.heartbeat_ttl - 1)
    conn.delete(keys.reaper_lock(keys.IMAGE_QUEUE))  # the next interval
    sweep(worker)
    assert q.intermediate_queue.get_job_ids() == []
    assert q.get_job_ids() == [job.id]
    assert conn.hget(keys.job(job.id), "abandoned") == b"1"
