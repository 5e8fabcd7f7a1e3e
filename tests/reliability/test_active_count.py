"""The per-member "queued or running" count (`member_active`) against a real Redis, along every way a job ends.

A job takes its place once, when it is admitted (`imagine.fair.submit` adds its id to the member's active set), and
holds it for as long as RQ says it is queued, started, scheduled or deferred. It gives it back when it ends: at
once when cancelled (`imagine.fair.release`), and otherwise at the member's next request, whose admission drops
every id that is no longer live before it counts, in the same atomic script. So each test drives one ending, checks
the job held exactly one place while it lived, and then that every place is free again: `/queue` shows nothing, and
the member may queue as many jobs as the limit allows, and not one more.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from imagine import fair, keys, limits, queue, waiting
from imagine.admission import Refused
from imagine.contract import InitImage, JobSpec, Requester
from imagine.settings import Settings
from tests.helpers import make_settings, run_burst
from worker import jobs as worker_jobs
from worker import reaper, rendezvous
from worker.context import WorkerContext
from worker.worker import ImagineWorker

GUILD, ALICE, BOB = 3003, 31, 32


def spec(user: int = ALICE, **fields: Any) -> JobSpec:
    """A small request of `user`'s in the test server (no channel or token: the worker posts nowhere)."""
    base: dict[str, Any] = {"prompt": "a red circle", "model": "tiny", "steps": 2, "seed": 7}
    return JobSpec(**{**base, **fields}, requester=Requester(guild_id=GUILD, user_id=user))


def ask(conn: redis.Redis, settings: Settings, user: int = ALICE, **fields: Any) -> str:
    return queue.enqueue(conn, spec(user, **fields), settings).id


def held(conn: redis.Redis, user: int = ALICE) -> list[str]:
    """The member's jobs that hold a place, as `/queue` lists them (live RQ status, as the limit counts them)."""
    return sorted(j.job_id for j in waiting.snapshot(conn, GUILD, user))


def status(conn: redis.Redis, job_id: str) -> str | None:
    raw = conn.hget(f"rq:job:{job_id}", "status")
    return raw.decode() if raw is not None else None


def assert_holds(conn: redis.Redis, settings: Settings, job_ids: list[str]) -> None:
    """The jobs hold one place each, and the member (at its limit) is refused another."""
    assert held(conn) == sorted(job_ids)
    with pytest.raises(Refused) as no:
        ask(conn, settings)
    assert no.value.limit == "member_active"
    assert conn.zcard(keys.member(GUILD, ALICE, "active")) == len(job_ids)  # taken once each


def assert_released(conn: redis.Redis, settings: Settings, limit: int = 1) -> None:
    """Every place is free: nothing in `/queue`, and exactly `limit` new jobs are admitted again."""
    assert held(conn) == []
    probes = [ask(conn, settings) for _ in range(limit)]
    with pytest.raises(Refused) as no:
        ask(conn, settings)
    assert no.value.limit == "member_active"
    assert conn.zcard(keys.member(GUILD, ALICE, "active")) == limit  # the ended jobs' ids are gone, not just ignored
    for probe in probes:
        assert waiting.cancel(conn, probe, reason="probe") == "cancelled"
    assert held(conn) == []


@pytest.fixture
def limit_one(conn: redis.Redis) -> int:
    limits.store(conn, GUILD, "member_active", 1)
    return 1


# --- the worker ends it -----------------------------------------------------------------------------------------


def test_success(conn: redis.Redis, settings: Settings, ctx: WorkerContext, limit_one: int) -> None:
    job = ask(conn, settings)
    assert_holds(conn, settings, [job])
    run_burst(ctx)
    assert status(conn, job) == JobStatus.FINISHED
    assert_released(conn, settings)


def test_a_refused_job_fails_at_once(conn: redis.Redis, settings: Settings, ctx: WorkerContext, limit_one: int) -> None:
    job = ask(conn, settings, model="no-such-model")
    run_burst(ctx)
    assert status(conn, job) == JobStatus.FAILED
    assert conn.hget(keys.job(job), "attempts") == b"1"  # not retried
    assert_released(conn, settings)


def test_an_error_on_every_attempt_fails_once_retries_run_out(
    conn: redis.Redis, settings: Settings, ctx: WorkerContext, limit_one: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[str] = []

    def broken(ctx: Any, job_id: str, payload: Any, courier: Any = None) -> Any:
        attempts.append(job_id)
        assert_holds(conn, settings, [job_id])  # a retry keeps the one place it had
        raise RuntimeError("the GPU caught fire")

    monkeypatch.setattr(worker_jobs, "_run", broken)
    job = ask(conn, settings)
    run_burst(ctx)
    assert len(attempts) == 1 + settings.job_retries
    assert status(conn, job) == JobStatus.FAILED
    assert_released(conn, settings)


def test_batch_companions(
    conn: redis.Redis, settings: Settings, ctx: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    limits.store(conn, GUILD, "member_active", 3)
    sizes: list[int] = []
    real = rendezvous.run_calls

    def counting(calls: list[Any]) -> list[Any]:
        sizes.append(sum(rendezvous._images(c) for c in calls))
        return real(calls)

    monkeypatch.setattr(rendezvous, "run_calls", counting)
    jobs = [ask(conn, settings, seed=i) for i in range(3)]
    other = ask(conn, settings, BOB)
    assert_holds(conn, settings, jobs)
    run_burst(ctx)
    assert sizes == [4]  # one sampler call: a leader and three companions
    assert all(status(conn, j) == JobStatus.FINISHED for j in [*jobs, other])
    assert_released(conn, settings, limit=3)
    assert held(conn, BOB) == []


def test_a_batch_companion_that_fails(
    conn: redis.Redis, settings: Settings, ctx: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    limits.store(conn, GUILD, "member_active", 2)
    real = worker_jobs._run
    companions: list[str] = []

    def second_fails(ctx: Any, job_id: str, payload: Any, courier: Any = None) -> Any:
        if job_id == jobs[1]:
            companions.append(threading.current_thread().name)
            raise RuntimeError("out of luck")
        return real(ctx, job_id, payload, courier)

    monkeypatch.setattr(worker_jobs, "_run", second_fails)
    jobs = [ask(conn, settings, seed=i) for i in range(2)]
    run_burst(ctx)
    assert companions[0].startswith("batch-")  # it failed first as the leader's companion, then alone on retries
    assert len(companions) == 1 + settings.job_retries
    assert [status(conn, j) for j in jobs] == [JobStatus.FINISHED, JobStatus.FAILED]
    assert_released(conn, settings, limit=2)


def test_a_clip(conn: redis.Redis, settings: Settings, ctx: WorkerContext, limit_one: int) -> None:
    job = ask(conn, settings, kind="clip", model="tiny-clips", steps=None)
    assert_holds(conn, settings, [job])
    run_burst(ctx)
    assert status(conn, job) == JobStatus.FINISHED
    assert_released(conn, settings)


def test_a_reroll_and_a_variation(conn: redis.Redis, settings: Settings, ctx: WorkerContext, limit_one: int) -> None:
    first = ask(conn, settings)
    run_burst(ctx)
    reroll = ask(conn, settings, seed=8)  # a re-roll is the same request with a new seed, a job like any other
    assert_holds(conn, settings, [reroll])
    run_burst(ctx)
    init = InitImage(job_id=first, index=0, strength=0.6).model_dump()
    variation = ask(conn, settings, seed=9, init_image=init, width=32, height=32)
    assert_holds(conn, settings, [variation])
    run_burst(ctx)
    assert [status(conn, j) for j in (first, reroll, variation)] == [JobStatus.FINISHED] * 3
    assert_released(conn, settings)


# --- cancelled before a worker took it --------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["cancelled", "cancelled by a moderator"])  # /cancel or ❌; /mod cancel
def test_cancelled_while_waiting(conn: redis.Redis, settings: Settings, limit_one: int, reason: str) -> None:
    job = ask(conn, settings)
    assert waiting.cancel(conn, job, reason=reason) == "cancelled"
    assert status(conn, job) == JobStatus.CANCELED
    assert conn.zcard(keys.member(GUILD, ALICE, "active")) == 0  # released at once, not at the next request
    assert waiting.cancel(conn, job, reason=reason) == "gone"  # a second cancel releases nothing more
    assert_released(conn, settings)


def test_a_moderator_clears_a_paused_servers_jobs(conn: redis.Redis, settings: Settings) -> None:
    limits.store(conn, GUILD, "member_active", 2)
    fair.pause(conn, GUILD)
    jobs = [ask(conn, settings, seed=i) for i in range(2)]
    assert_holds(conn, settings, jobs)  # parked jobs wait, so they count
    cleared = waiting.clear(conn, GUILD, reason="cancelled by a moderator")
    assert sorted(j.job_id for j in cleared) == sorted(jobs)
    fair.resume(conn, GUILD)
    assert_released(conn, settings, limit=2)


def test_a_running_job_cannot_be_cancelled_and_keeps_its_place_until_it_ends(
    conn: redis.Redis, settings: Settings, ctx: WorkerContext, limit_one: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcomes: list[str] = []
    real = worker_jobs._run

    def cancelled_meanwhile(ctx: Any, job_id: str, payload: Any, courier: Any = None) -> Any:
        outcomes.append(waiting.cancel(conn, job_id, reason="cancelled"))
        assert_holds(conn, settings, [job_id])
        return real(ctx, job_id, payload, courier)

    monkeypatch.setattr(worker_jobs, "_run", cancelled_meanwhile)
    job = ask(conn, settings)
    run_burst(ctx)
    assert outcomes == ["running"] and status(conn, job) == JobStatus.FINISHED
    assert_released(conn, settings)


# --- the worker died; the reaper notices -------------------------------------------------------------------------


@pytest.fixture
def dying(ctx: WorkerContext, conn: redis.Redis, redis_url: str) -> Iterator[ImagineWorker]:
    """A worker that takes jobs and dies (nothing runs them), with the tests' quick heartbeats."""
    settings = make_settings(redis_url, ctx.settings.data_dir)
    yield ImagineWorker(
        [keys.IMAGE_QUEUE], ctx=dataclasses.replace(ctx, settings=settings, conn=conn, name="dead-worker")
    )


def sweep(worker: ImagineWorker) -> None:
    worker.connection.delete(keys.reaper_lock(keys.IMAGE_QUEUE))  # the next maintenance interval
    reaper.sweep(worker.ctx, worker.queue_names(), worker.name)


def take_and_die(worker: ImagineWorker, stage: str) -> Job:
    """Take the next job and die at `stage`: its heartbeat (or its first sighting) simply runs out.

    "taken": off the queue, not yet registered; "registered": in RQ's started registry but not yet started (where
    the worker looks for batch companions); "running": started.
    """
    taken = worker.queue_class.dequeue_any(worker.queues, None, connection=worker.connection, serializer=JSONSerializer)
    assert taken is not None
    job, q = taken
    if stage != "taken":
        execution = worker.prepare_execution(job)
        if stage == "running":
            worker.prepare_job_execution(job, remove_from_intermediate_queue=True)
        worker.connection.zadd(q.started_job_registry.key, {f"{job.id}:{execution.id}": time.time() - 1})
    if stage != "running":
        sweep(worker)  # the first sighting in the intermediate list
        ttl = worker.ctx.settings.heartbeat_ttl
        worker.connection.set(q.intermediate_queue.get_first_seen_key(job.id), time.time() - ttl - 1)
    return job


STAGES = ["running", "registered", "taken"]


@pytest.mark.parametrize("stage", STAGES)
def test_a_dead_workers_job_is_retried_then_finishes(
    conn: redis.Redis, ctx: WorkerContext, dying: ImagineWorker, limit_one: int, stage: str
) -> None:
    settings = make_settings("redis://unused", ctx.settings.data_dir, job_retries=1)
    job = ask(conn, settings)
    take_and_die(dying, stage)
    sweep(dying)
    assert status(conn, job) == JobStatus.QUEUED and queue.image_queue(conn).get_job_ids() == [job]
    assert_holds(conn, settings, [job])  # back in the queue, still in its one place
    run_burst(ctx)
    assert status(conn, job) == JobStatus.FINISHED
    assert_released(conn, settings)


@pytest.mark.parametrize("stage", STAGES)
def test_a_dead_workers_job_out_of_retries_fails(
    conn: redis.Redis, ctx: WorkerContext, dying: ImagineWorker, limit_one: int, stage: str
) -> None:
    settings = make_settings("redis://unused", ctx.settings.data_dir, job_retries=0)
    job = ask(conn, settings)
    take_and_die(dying, stage)
    sweep(dying)
    assert status(conn, job) == JobStatus.FAILED
    assert_released(conn, settings)


# --- expired, and taken once -------------------------------------------------------------------------------------


def test_a_job_that_expired_from_redis(
    conn: redis.Redis, settings: Settings, ctx: WorkerContext, limit_one: int
) -> None:
    """Evicted while waiting (a server that may evict keys; `imagine status` warns of it), or its result expired."""
    waiting_job = ask(conn, settings)
    conn.delete(f"rq:job:{waiting_job}")
    assert held(conn) == []
    run_burst(ctx)  # the worker skips the id it cannot load
    done = ask(conn, settings)
    run_burst(ctx)
    conn.delete(f"rq:job:{done}")  # what `result_ttl` does to a finished job
    assert_released(conn, settings)


def test_enqueueing_the_same_job_twice_takes_one_place(conn: redis.Redis, settings: Settings) -> None:
    limits.store(conn, GUILD, "member_active", 2)
    job_id = queue.new_job_id()
    for _ in range(2):
        assert queue.enqueue(conn, spec(), settings, job_id=job_id).id == job_id
    assert held(conn) == [job_id] and conn.zcard(keys.member(GUILD, ALICE, "active")) == 1
    assert waiting.cancel(conn, job_id, reason="cancelled") == "cancelled"
    assert_released(conn, settings, limit=2)
