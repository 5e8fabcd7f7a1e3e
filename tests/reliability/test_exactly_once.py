"""Exactly-once posting (worker/idempotency.py, worker/outbox.py) against the fake Discord and a real Redis: posters
racing for one job post it once; a poster's lease is renewed while it posts and taken over only once it stops."""

# ruff: noqa: F811  (the fixture imported from tests.support.fixtures is a parameter here)

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import pytest
import redis

from imagine import ui
from imagine.contract import JobSpec, Requester
from tests.helpers import make_settings
from tests.support.fixtures import fake_discord  # noqa: F401
from tests.support.scenario import FakeDiscord
from worker import idempotency, outbox
from worker.discord_rest import DiscordREST


def poster(conn: redis.Redis, redis_url: str, data_dir: Any, name: str) -> Any:
    settings = make_settings(redis_url, data_dir)
    return SimpleNamespace(conn=conn, settings=settings, name=name)


@pytest.mark.asyncio
async def test_racing_posters_post_a_result_once(
    fake_discord: FakeDiscord, conn: redis.Redis, redis_url: str, data_dir: Any
) -> None:
    fake = fake_discord
    scene = await fake.default_scene()
    rest = DiscordREST(fake.api_base, fake.token)
    status = await asyncio.to_thread(rest.send, scene.channel.id, {"content": "⏳ queued"})
    job_id = "race0123456789abcdef"
    spec = JobSpec(
        prompt="raced",
        requester=Requester(channel_id=scene.channel.id, message_id=int(status["id"]), user_id=scene.alice.id),
    )
    parcel = outbox.Parcel(
        job_id=job_id,
        kind="result",
        spec=spec.payload(),
        payload={"content": "done", "allowed_mentions": ui.NO_MENTIONS, "components": ui.result_components(job_id, 1)},
        late="done",
        tidy="done below",
        count=1,
    )
    start = threading.Barrier(8)

    def race(i: int) -> str:
        start.wait()
        return outbox.send_once(poster(conn, redis_url, data_dir, f"worker-{i}"), rest, parcel)

    with ThreadPoolExecutor(8) as pool:
        outcomes = await asyncio.to_thread(lambda: list(pool.map(race, range(8))))
    assert outcomes.count("posted") == 1, outcomes
    edits = [c for c in fake.calls_to("PATCH", "/channels/{channel_id}/messages/{message_id}") if c.status == 200]
    assert len(edits) == 1
    # Those that found it being posted kept a copy in case the poster died; the next pass finds it posted.
    counts = await asyncio.to_thread(
        outbox.retry_due, poster(conn, redis_url, data_dir, "sweeper"), rest, now=time.time() + 60
    )
    assert counts["posted"] == 0 and outbox.pending(conn) == []
    assert len([c for c in fake.calls_to("PATCH") if c.status == 200]) == 1
    rest.close()


def test_a_lease_lives_while_renewed_and_is_taken_over_once_it_stops(conn: redis.Redis) -> None:
    job = "lease0123456789"
    assert idempotency.claim(conn, job, "a", lease_s=0.6).verdict == "claimed"
    with idempotency.Lease(conn, job, "a", lease_s=0.6):
        time.sleep(1.2)  # twice the lease: alive only because it is renewed
        busy = idempotency.claim(conn, job, "b", lease_s=0.6)
        assert busy.verdict == "busy" and 0 < busy.wait_ms <= 600
    time.sleep(0.7)  # "a" died: nobody renews
    assert idempotency.claim(conn, job, "b", lease_s=0.6).verdict == "taken-over"
    assert not idempotency.renew(conn, job, "a", 0.6)  # the dead poster cannot take it back
    idempotency.mark_posted(conn, job, "b", 42, taken_over=True)
    assert idempotency.claim(conn, job, "c", lease_s=0.6).verdict == "posted"
    assert not idempotency.release(conn, job, "b")  # a posted job stays posted
    assert (idempotency.state(conn, job) or {})["message_id"] == "42"
