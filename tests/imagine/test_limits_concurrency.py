"""Concurrent requests at a limit's edge, against a real Redis: however many arrive at once, no more are admitted
than the limit allows, because the check and the admission are one Lua script.

The control test runs the same race against a check-then-act done in two round trips, to show the race is real:
that one overshoots."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
import redis

from imagine import fair, keys, limits, queue
from imagine.admission import Refused
from imagine.contract import JobSpec, Requester
from imagine.settings import Settings

GUILD = 4242
THREADS = 24


def race(redis_url: str, attempt: Callable[[redis.Redis, int], str]) -> tuple[list[str], list[str]]:
    """Run `attempt(conn, i)` in THREADS threads released together; (admitted ids, refused limits)."""
    barrier = threading.Barrier(THREADS)
    admitted: list[str] = []
    refusals: list[str] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def run(i: int) -> None:
        conn = redis.Redis.from_url(redis_url)
        try:
            barrier.wait()
            try:
                job_id = attempt(conn, i)
            except Refused as exc:
                with lock:
                    refusals.append(exc.limit)
                return
            with lock:
                admitted.append(job_id)
        except BaseException as exc:
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return admitted, refusals


def ask(settings: Settings, user: int) -> Callable[[redis.Redis, int], str]:
    def attempt(conn: redis.Redis, i: int) -> str:
        spec = JobSpec(prompt=f"request {i}", requester=Requester(guild_id=GUILD, channel_id=1, user_id=user or i))
        return queue.enqueue(conn, spec, settings).id

    return attempt


@pytest.mark.parametrize("rounds", [3])
def test_one_member_at_once_never_exceeds(redis_url: str, conn: redis.Redis, settings: Settings, rounds: int) -> None:
    limits.store(conn, GUILD, "member_active", 3)
    for _ in range(rounds):
        admitted, refusals = race(redis_url, ask(settings, user=7))
        assert len(admitted) == 3 and refusals == ["member_active"] * (THREADS - 3)
        assert conn.zcard(keys.member(GUILD, 7, "active")) == 3
        assert sorted(fair.order(conn)) == sorted(admitted)
        for job_id in admitted:  # they finish; the next round starts from zero
            conn.hset(f"rq:job:{job_id}", "status", "finished")
        conn.delete(keys.member(GUILD, 7, "hourly"))
        fair.clear(conn)


def test_per_hour_never_exceeds(redis_url: str, conn: redis.Redis, settings: Settings) -> None:
    limits.store(conn, GUILD, "member_active", THREADS)
    limits.store(conn, GUILD, "member_hourly", 5)
    roomy = settings.model_copy(update={"member_max_active": THREADS})  # the owner's ceiling allows it
    admitted, refusals = race(redis_url, ask(roomy, user=8))
    assert len(admitted) == 5 and set(refusals) == {"member_hourly"}


def test_server_depth_never_exceeds(redis_url: str, conn: redis.Redis, settings: Settings) -> None:
    limits.store(conn, GUILD, "queue_depth", 6)
    admitted, refusals = race(redis_url, ask(settings, user=0))  # every thread a different member
    assert len(admitted) == 6 and set(refusals) == {"queue_depth"}
    assert conn.zcard(keys.guild(GUILD, "active")) == 6 and len(fair.order(conn)) == 6


def test_control_a_check_then_act_in_two_steps_overshoots(redis_url: str, conn: redis.Redis) -> None:
    """The harness makes a real race: the naive version admits more than its limit of 3."""
    key = "naive:active"

    def naive(c: redis.Redis, i: int) -> str:
        if c.zcard(key) >= 3:
            raise Refused("member_active", "full")
        time.sleep(0.01)  # the gap any client has between its read and its write
        c.zadd(key, {str(i): i})
        return str(i)

    admitted, _ = race(redis_url, naive)
    assert len(admitted) > 3
