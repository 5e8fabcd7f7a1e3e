"""Discord failing on demand (the fake answers 429, 5xx or late): retries that honour `retry_after`, back off with
jitter and time out; a result Discord still refuses is kept and posted by a later pass; an expired token falls
back to a channel message that pings only the member; a post repeated after a crash is never a second message."""

# ruff: noqa: F811  (fixtures imported from tests.bot.fixtures are parameters here)

from __future__ import annotations

import asyncio
import itertools
import json
import time
from types import SimpleNamespace
from typing import Any

import pytest
from rq.job import Job
from rq.serializers import JSONSerializer

from imagine import keys
from imagine.contract import JobSpec
from tests.bot.fixtures import Front, base_ctx, front, tiny_registry  # noqa: F401
from tests.reliability.stack import Stack
from tests.support.fixtures import discord_patched, fake_discord  # noqa: F401
from tests.support.scenario import FakeDiscord
from tests.support.state import RestCall
from worker import idempotency, outbox
from worker.discord_rest import DiscordError, DiscordREST
from worker.targets import Target

MESSAGES = "/channels/{channel_id}/messages"


def gaps(calls: list[RestCall]) -> list[float]:
    return [b.at - a.at for a, b in itertools.pairwise(calls)]


@pytest.mark.asyncio
async def test_a_429_waits_for_retry_after(fake_discord: FakeDiscord) -> None:
    fake = fake_discord
    scene = await fake.default_scene()
    rest = DiscordREST(fake.api_base, fake.token)
    fake.fail_next(MESSAGES, status=429, retry_after=0.8)
    sent = await asyncio.to_thread(rest.send, scene.channel.id, {"content": "after the limit"})
    calls = fake.calls_to("POST", MESSAGES)
    assert [c.status for c in calls] == [429, 200] and sent["content"] == "after the limit"
    assert gaps(calls)[0] >= 0.8
    rest.close()


@pytest.mark.asyncio
async def test_5xx_back_off_with_jitter_then_give_up_with_a_named_error(fake_discord: FakeDiscord) -> None:
    fake = fake_discord
    scene = await fake.default_scene()
    rest = DiscordREST(fake.api_base, fake.token, attempts=3)
    fake.fail_next(MESSAGES, status=502, count=2)
    await asyncio.to_thread(rest.send, scene.channel.id, {"content": "third time lucky"})
    waits = gaps(fake.calls_to("POST", MESSAGES))
    # 0.5 s, then 1 s, each times a random factor in [0.5, 1.5]: growing, and never a fixed beat.
    assert len(waits) == 2 and 0.25 <= waits[0] <= 0.8 and 0.5 <= waits[1] <= 1.6
    fake.fail_next(MESSAGES, status=503, count=3)
    with pytest.raises(DiscordError) as gave_up:
        await asyncio.to_thread(rest.send, scene.channel.id, {"content": "never"})
    assert gave_up.value.status == 503
    rest.close()


@pytest.mark.asyncio
async def test_a_timeout_is_retried(fake_discord: FakeDiscord) -> None:
    fake = fake_discord
    scene = await fake.default_scene()
    rest = DiscordREST(fake.api_base, fake.token, timeout=0.3, attempts=3)
    fake.fail_next(MESSAGES, status=None, delay=1.0)  # answers, but after the client stopped waiting
    started = time.monotonic()
    await asyncio.to_thread(rest.send, scene.channel.id, {"content": "on time"})
    assert time.monotonic() - started >= 0.3
    fake.fail_next(MESSAGES, status=None, delay=1.0, count=3)
    with pytest.raises(DiscordError, match="Timeout"):
        await asyncio.to_thread(rest.send, scene.channel.id, {"content": "too slow"})
    await asyncio.sleep(1.1)  # let the late answers land before the fake closes
    rest.close()


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.slow
async def test_a_result_discord_keeps_refusing_is_kept_and_posted_by_a_later_pass(clean: Stack) -> None:
    stack = clean
    channel_id, member = await stack.channel()

    def result_post(call: RestCall) -> bool:
        return "imagine:r:" in json.dumps(call.json or {})

    # Every one of the worker's tries (5) is refused: the job ends with its result in the outbox.
    fault = stack.fake.fail_next("/webhooks/*", method="PATCH", status=502, count=5, when=result_post)
    _, job_id = await stack.ask(channel_id, member, "refused at first --steps 2 --seed 11")
    await stack.poll(lambda: job_id in outbox.pending(stack.conn), "the result kept in the outbox", 60)
    ttl = stack.conn.ttl(keys.outbox(job_id))
    assert 0 < ttl <= keys.OUTBOX_TTL and stack.conn.hget(keys.job(job_id), "delivery") == b"pending"
    await stack.result(channel_id, job_id)  # a maintenance pass posts it
    assert fault.hits == 5 and len(stack.results(channel_id, job_id)) == 1
    await stack.poll(lambda: job_id not in outbox.pending(stack.conn), "the outbox emptied", 10)
    assert not stack.conn.exists(keys.outbox(job_id))
    assert stack.conn.hget(keys.job(job_id), "delivery") == b"interaction"


async def queued(front: Front, prompt: str) -> tuple[Any, str, dict[str, Any]]:
    fake, scene = front.fake, front.scene
    inter = await fake.wait_for_ack(
        await fake.slash("imagine", channel_id=scene.channel.id, user_id=scene.alice.id, options={"prompt": prompt})
    )
    await fake.wait_for(lambda: front.conn.get(keys.message(inter.original_message_id or 0)), what="queued")
    job_id = front.job_of_message(inter.original_message_id or 0)
    return inter, job_id, Job.fetch(job_id, connection=front.conn, serializer=JSONSerializer).args[0]


def poster(front: Front) -> Any:
    """What `send_once` needs of a worker: Redis, settings, a name."""
    return SimpleNamespace(conn=front.conn, settings=front.settings, name="test-poster")


@pytest.mark.asyncio
async def test_a_failure_after_15_minutes_replies_and_pings_only_the_member(front: Front) -> None:
    fake, scene = front.fake, front.scene
    inter, job_id, payload = await queued(front, "late failure <@&1> @everyone")
    await fake.advance_clock(15 * 60 + 1)
    parcel = outbox.failure_parcel(job_id, payload, "the worker making this image stopped unexpectedly (2 tries)")
    rest = DiscordREST(fake.api_base, fake.token)
    assert await asyncio.to_thread(outbox.send_once, poster(front), rest, parcel) == "posted"
    assert await asyncio.to_thread(outbox.send_once, poster(front), rest, parcel) == "already"
    rest.close()
    replies = [m for m in fake.messages(scene.channel.id) if m.message_reference]
    assert len(replies) == 1
    reply = replies[0]
    assert reply.webhook_id is None and reply.content.startswith(f"<@{scene.alice.id}>")
    assert "stopped unexpectedly" in reply.content
    assert reply.mention_user_ids == [scene.alice.id] and not reply.mention_everyone and not reply.mention_role_ids
    assert int(reply.message_reference["message_id"]) == inter.original_message_id
    assert "failed" in fake.message(inter.original_message_id or 0).content


@pytest.mark.asyncio
async def test_a_channel_post_repeated_after_a_crash_is_not_a_second_message(front: Front) -> None:
    """A poster died after Discord took its channel message but before it marked the job: the retry's post carries
    the same nonce, and Discord answers it with the first message."""
    fake, scene = front.fake, front.scene
    _, job_id, payload = await queued(front, "posted just before a crash")
    await fake.advance_clock(15 * 60 + 1)  # the late path: a new channel message, not an edit
    parcel = outbox.failure_parcel(job_id, payload, "gave up")
    rest = DiscordREST(fake.api_base, fake.token)
    dead = idempotency.new_holder("dead-worker")
    assert idempotency.claim(front.conn, job_id, dead, lease_s=0.2).verdict == "claimed"
    target = Target.of(JobSpec.model_validate(payload))
    await asyncio.to_thread(
        target.post_result, rest, parcel.payload, [], parcel.late, tidy=parcel.tidy, nonce=job_id[:25]
    )
    await asyncio.sleep(0.3)  # its lease runs out
    assert await asyncio.to_thread(outbox.send_once, poster(front), rest, parcel) == "posted"
    rest.close()
    assert (idempotency.state(front.conn, job_id) or {}).get("taken_over") is True
    assert len([m for m in fake.messages(scene.channel.id) if m.message_reference]) == 1
    assert len(fake.calls_to("POST", MESSAGES)) == 2  # posted twice, one message
