"""Fair order, pause and cancel as workers see them, against a real Redis; the last tests run the real worker.

The order is the replay of what workers pop next (`fair.order`). "Taken" below is what a worker's dequeue does."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from imagine import fair, keys, queue, waiting
from imagine.contract import JobSpec, Requester, Started
from imagine.settings import Settings
from tests.helpers import events_of, run_burst
from worker.fair import FairQueue

X, Y = 501, 502  # two servers sharing the workers


def ask(conn: redis.Redis, settings: Settings, name: str, user: int, guild: int = X, **fields: object) -> str:
    spec = JobSpec(
        prompt=name,
        model="tiny",
        steps=2,
        requester=Requester(guild_id=guild, channel_id=guild, user_id=user),
        **fields,  # type: ignore[arg-type]
    )
    return queue.enqueue(conn, spec, settings, job_id=name).id


def take(conn: redis.Redis) -> str:
    """What a worker's dequeue does: pop the fair head."""
    popped = fair.pop(conn, keys.IMAGE_QUEUE)
    assert popped is not None
    return popped[0]


@pytest.fixture
def roomy(conn: redis.Redis, settings: Settings) -> Iterator[Settings]:
    """Limits out of the way (the owner's ceiling raised too): these tests are about order."""
    from imagine import limits

    for guild in (X, Y):
        limits.store(conn, guild, "member_active", 50)
    yield settings.model_copy(update={"member_max_active": 50})


# --- order -----------------------------------------------------------------------------------------------------


def test_a_newcomer_goes_before_a_flooders_second_job(conn: redis.Redis, roomy: Settings) -> None:
    for i in range(1, 6):
        ask(conn, roomy, f"A{i}", user=1)
    ask(conn, roomy, "B1", user=2)
    assert fair.order(conn) == ["A1", "B1", "A2", "A3", "A4", "A5"]


def test_a_newcomer_after_the_first_job_was_taken_goes_next(conn: redis.Redis, roomy: Settings) -> None:
    for i in range(1, 6):
        ask(conn, roomy, f"A{i}", user=1)
    assert take(conn) == "A1"
    ask(conn, roomy, "B1", user=2)
    ask(conn, roomy, "C1", user=3)
    assert fair.order(conn) == ["B1", "C1", "A2", "A3", "A4", "A5"]


def test_two_flooders_alternate(conn: redis.Redis, roomy: Settings) -> None:
    for i in range(1, 4):
        ask(conn, roomy, f"A{i}", user=1)
    for i in range(1, 4):
        ask(conn, roomy, f"B{i}", user=2)
    assert fair.order(conn) == ["A1", "B1", "A2", "B2", "A3", "B3"]


def test_idling_earns_no_credit(conn: redis.Redis, roomy: Settings) -> None:
    ask(conn, roomy, "A1", user=1)
    ask(conn, roomy, "A2", user=1)
    for i in range(1, 7):
        ask(conn, roomy, f"B{i}", user=2)
    assert fair.order(conn) == ["A1", "B1", "A2", "B2", "B3", "B4", "B5", "B6"]
    for _ in range(6):
        take(conn)
    # A had two turns and went quiet while B had four. Back with two jobs, A alternates with B: the turns it did
    # not take while idle are not owed to it (else A3 and A4 would both jump B5).
    ask(conn, roomy, "A3", user=1)
    ask(conn, roomy, "A4", user=1)
    assert fair.order(conn) == ["A3", "B5", "A4", "B6"]


def test_servers_share_the_workers(conn: redis.Redis, roomy: Settings) -> None:
    for user in range(10, 16):  # a busy server: six members, one job each
        ask(conn, roomy, f"X{user}", user=user, guild=X)
    ask(conn, roomy, "Y1", user=20, guild=Y)
    ask(conn, roomy, "Y2", user=20, guild=Y)
    order = fair.order(conn)
    assert order[:4] == ["X10", "Y1", "X11", "Y2"]  # not behind all six of X's


def test_the_bot_reads_each_place_from_the_list(conn: redis.Redis, roomy: Settings) -> None:
    ask(conn, roomy, "A1", user=1)
    ask(conn, roomy, "A2", user=1)
    ask(conn, roomy, "B1", user=2)
    assert [queue.position(conn, j) for j in ("A1", "B1", "A2")] == [0, 1, 2]


# --- pause -----------------------------------------------------------------------------------------------------


def test_pause_parks_a_servers_jobs_and_resume_puts_them_back(conn: redis.Redis, roomy: Settings) -> None:
    ask(conn, roomy, "X1", user=1, guild=X)
    ask(conn, roomy, "X2", user=2, guild=X)
    ask(conn, roomy, "Y1", user=3, guild=Y)
    assert fair.pause(conn, X) and not fair.pause(conn, X)
    assert fair.order(conn) == ["Y1"]
    ask(conn, roomy, "X3", user=1, guild=X)  # taken while paused (paused_accepts), and parked
    ask(conn, roomy, "Y2", user=3, guild=Y)
    assert fair.order(conn) == ["Y1", "Y2"]
    assert [j.state for j in waiting.snapshot(conn, X)] == ["paused"] * 3
    assert fair.resume(conn, X)
    assert sorted(fair.order(conn)) == ["X1", "X2", "X3", "Y1", "Y2"]
    assert fair.order(conn)[0] == "X1"  # X had no turn yet: it comes first


def test_a_worker_parks_a_paused_servers_job_that_reached_the_list(conn: redis.Redis, roomy: Settings) -> None:
    ask(conn, roomy, "X1", user=1, guild=X)
    ask(conn, roomy, "Y1", user=2, guild=Y)
    fair.pause(conn, X)
    conn.lpush("rq:queue:imagine:image", "X1")  # as RQ does with a retry (at the front)
    q = FairQueue("imagine:image", connection=conn, serializer=JSONSerializer)
    got = FairQueue.dequeue_any([q], None, connection=conn, serializer=JSONSerializer)
    assert got is not None and got[0].id == "Y1"
    assert conn.lrange(q.intermediate_queue_key, 0, -1) == [b"Y1"]  # X1 is not left in RQ's hands
    fair.resume(conn, X)
    assert fair.order(conn) == ["X1"]


# --- cancel ----------------------------------------------------------------------------------------------------


def test_cancel_takes_a_job_out_of_rq(conn: redis.Redis, roomy: Settings) -> None:
    for name in ("A1", "A2", "A3"):
        ask(conn, roomy, name, user=1)
    assert waiting.cancel(conn, "A2", reason="cancelled") == "cancelled"
    assert fair.order(conn) == ["A1", "A3"]
    job = Job.fetch("A2", connection=conn, serializer=JSONSerializer)
    assert job.get_status() == JobStatus.CANCELED and job.is_canceled
    assert conn.hget(keys.job("A2"), "status") == b"cancelled"
    assert [e.type for e in events_of(conn, "A2")] == ["failed"]
    assert waiting.cancel(conn, "A2", reason="again") == "gone"
    take(conn)
    conn.hset("rq:job:A1", "status", "started")
    assert waiting.cancel(conn, "A1", reason="too late") == "running"


def test_clear_one_member_or_everyone(conn: redis.Redis, roomy: Settings) -> None:
    for name, user in (("A1", 1), ("A2", 1), ("B1", 2), ("B2", 2)):
        ask(conn, roomy, name, user=user)
    assert sorted(j.job_id for j in waiting.clear(conn, X, user_id=1, reason="x")) == ["A1", "A2"]
    assert fair.order(conn) == ["B1", "B2"]
    assert len(waiting.clear(conn, X, reason="x")) == 2 and fair.order(conn) == []


# --- with the real worker --------------------------------------------------------------------------------------


def started_at(conn: redis.Redis, job_id: str) -> float | None:
    starts = [e.ts for e in events_of(conn, job_id) if isinstance(e, Started)]
    return starts[0] if starts else None


def test_fairness_b_starts_no_later_than_as_second(conn: redis.Redis, roomy: Settings, ctx: object) -> None:
    """Member A submits 5 jobs, then member B one: B's job starts no later than A's second."""
    # Different guidance per job, so a batching worker cannot run them together and the order shows.
    for i in range(1, 6):
        ask(conn, roomy, f"A{i}", user=1, guidance=1.0 + i)
    ask(conn, roomy, "B1", user=2, guidance=9.0)
    run_burst(ctx)
    starts = {name: started_at(conn, name) for name in ("A1", "A2", "A3", "A4", "A5", "B1")}
    assert all(starts.values()), starts
    assert starts["B1"] <= starts["A2"], starts  # type: ignore[operator]
    assert starts["A2"] <= starts["A3"] <= starts["A4"] <= starts["A5"]  # type: ignore[operator]


def test_batching_never_reaches_past_another_members_job(conn: redis.Redis, roomy: Settings, ctx: object) -> None:
    """Member A floods identical jobs, which a batching worker could run together: B's still starts by A's second."""
    for i in range(1, 6):
        ask(conn, roomy, f"A{i}", user=1, guidance=2.0)
    ask(conn, roomy, "B1", user=2, guidance=9.0)
    run_burst(ctx)
    starts = {name: started_at(conn, name) for name in ("A1", "A2", "A3", "A4", "A5", "B1")}
    assert all(starts.values()), starts
    assert starts["B1"] <= starts["A2"], starts  # type: ignore[operator]


def test_a_paused_servers_jobs_wait_while_anothers_run(conn: redis.Redis, roomy: Settings, ctx: object) -> None:
    ask(conn, roomy, "X1", user=1, guild=X, guidance=2.0)
    ask(conn, roomy, "Y1", user=2, guild=Y, guidance=3.0)
    fair.pause(conn, X)
    ask(conn, roomy, "X2", user=1, guild=X, guidance=4.0)
    ask(conn, roomy, "Y2", user=2, guild=Y, guidance=5.0)
    run_burst(ctx)
    status = {
        j: Job.fetch(j, connection=conn, serializer=JSONSerializer).get_status() for j in ("X1", "X2", "Y1", "Y2")
    }
    assert status["Y1"] == status["Y2"] == JobStatus.FINISHED
    assert status["X1"] == status["X2"] == JobStatus.QUEUED  # waiting, not lost
    assert started_at(conn, "X1") is None and started_at(conn, "X2") is None
    fair.resume(conn, X)
    run_burst(ctx)
    for job_id in ("X1", "X2"):
        assert Job.fetch(job_id, connection=conn, serializer=JSONSerializer).get_status() == JobStatus.FINISHED


def test_no_worker_runs_a_cancelled_job(conn: redis.Redis, roomy: Settings, ctx: object) -> None:
    for i, name in enumerate(("A1", "A2", "A3")):
        ask(conn, roomy, name, user=1, guidance=2.0 + i)
    waiting.cancel(conn, "A2", reason="cancelled")
    run_burst(ctx)
    assert started_at(conn, "A1") and started_at(conn, "A3")
    assert started_at(conn, "A2") is None
    assert Job.fetch("A2", connection=conn, serializer=JSONSerializer).get_status() == JobStatus.CANCELED


def test_a_paused_servers_jobs_parked_by_the_old_scheduler_come_over(conn: redis.Redis, roomy: Settings) -> None:
    ask(conn, roomy, "Y1", user=2, guild=Y)
    meta = keys.fair(keys.IMAGE_QUEUE, "meta")  # the list-rewriting scheduler's parked job and tag hashes
    conn.hset(meta, "X9", '{"g": "501", "u": "1", "s": 7, "p": 1}')
    conn.hset(keys.fair(keys.IMAGE_QUEUE, "vt"), "*", 3)
    conn.sadd(keys.PAUSED, str(X))
    assert fair.upgrade(conn) == 1 and fair.upgrade(conn) == 0
    assert not conn.exists(meta) and not conn.exists(keys.fair(keys.IMAGE_QUEUE, "vt"))
    assert fair.order(conn) == ["Y1"]
    fair.resume(conn, X)
    assert sorted(fair.order(conn)) == ["X9", "Y1"]
