"""Redis restarted under a running deployment: a crash (SIGKILL) with jobs queued, a clean restart mid-job, and the
start-up check that warns when the server may evict keys."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from imagine import keys, queue
from imagine.redis import EmbeddedRedis, connect
from imagine.settings import Settings
from tests.reliability.stack import Stack, job_events


def queued_ids(stack: Stack) -> set[str]:
    return set(queue.image_queue(stack.conn).get_job_ids())


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.slow
async def test_queued_and_running_jobs_survive_a_redis_crash_and_everyone_reconnects(clean: Stack) -> None:
    stack = clean
    channel_id, member = await stack.channel()
    # Both workers busy with a long job each, so the next three wait in the queue through the crash.
    blockers = [
        await stack.ask(channel_id, member, f"keeps a worker busy --steps 60 --seed {i}", count=4) for i in (7, 8)
    ]
    for _, job_id in blockers:
        await stack.poll(lambda j=job_id: stack.worker_of(j), "the blockers to start", 60)
    others = [await stack.member() for _ in range(3)]
    waiting = [
        await stack.ask(channel_id, m, f"survives a crash {i} --steps 2 --seed {i}") for i, m in enumerate(others)
    ]
    ids = {job_id for _, job_id in waiting}
    assert ids <= queued_ids(stack) and all(stack.worker_of(j) for _, j in blockers), "the blockers were too short"
    await stack.restart_redis(crash=True)
    # Acknowledged writes reached the append-only file before the server died: nothing queued was forgotten.
    assert all(stack.conn.hget(keys.job(job_id), "spec") for job_id in ids)
    # The bot reconnected on its own: a request made after the restart goes through too.
    _, late = await stack.ask(channel_id, await stack.member(), "asked after the crash --steps 2 --seed 9")
    everything = [*(j for _, j in blockers), *ids, late]
    for job_id in everything:
        await stack.result(channel_id, job_id, timeout=120)
    for job_id in everything:
        assert len(stack.results(channel_id, job_id)) == 1
    await stack.workers_ready(2)


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.slow
async def test_a_job_running_through_a_clean_redis_restart_is_delivered_once(clean: Stack) -> None:
    stack = clean
    channel_id, member = await stack.channel()
    _, job_id = await stack.ask(channel_id, member, "runs through a restart --steps 60 --seed 3")
    await stack.poll(lambda: any(e["type"] == "progress" for e in job_events(stack.conn, job_id)), "sampling", 60)
    await stack.restart_redis(crash=False, down_s=2.0)
    await stack.result(channel_id, job_id)
    assert len(stack.results(channel_id, job_id)) == 1
    await stack.posted(job_id)  # marked right after Discord took it
    # Both workers (the busy one and the one waiting in a blocked pop) carried on against the new server.
    await stack.workers_ready(2)
    _, after = await stack.ask(channel_id, member, "after a clean restart --steps 2 --seed 4")
    await stack.result(channel_id, after)


def test_start_up_warns_clearly_when_redis_may_evict(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = {"maxmemory-policy": "allkeys-lru"}
    with EmbeddedRedis(tmp_path / "redis", config=config) as server, caplog.at_level(logging.WARNING):
        settings = Settings(_env_file=None, redis_url=server.url, data_dir=tmp_path)  # type: ignore[call-arg]
        with connect(settings) as connection:  # what `imagine bot` and `imagine worker` open at start-up
            assert connection.conn.ping()
    warning = next(r.getMessage() for r in caplog.records if "maxmemory-policy" in r.getMessage())
    assert "allkeys-lru" in warning and "noeviction" in warning


def test_clients_retry_through_a_restart(tmp_path: Path) -> None:
    """One command spans the restart: the client's backoff waits for the server instead of failing."""
    import threading
    import time

    from imagine.redis import client

    server = EmbeddedRedis(tmp_path / "redis")
    server.start()
    conn = client(server.url)
    conn.set("kept", "1")
    port = server.port
    server.stop()
    restarted = EmbeddedRedis(tmp_path / "redis", port=port)
    timer = threading.Timer(1.5, restarted.start)
    timer.start()
    started = time.monotonic()
    try:
        assert conn.get("kept") == b"1"  # waits ~1.5 s, then reads what the AOF kept
        assert time.monotonic() - started >= 1.0
    finally:
        timer.join()
        conn.close()
        restarted.stop()
