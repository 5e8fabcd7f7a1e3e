"""Worker-side delivery against the fake Discord: rate-limited status edits, one post per job, retries, targets."""

# ruff: noqa: F811  (fixtures imported from tests.bot.fixtures are parameters here)

from __future__ import annotations

import asyncio
import dataclasses
import io
import itertools
import time
from typing import Any

import numpy as np
import pytest
import redis
from PIL import Image
from rq.job import Job
from rq.serializers import JSONSerializer

from imagine import keys
from imagine.contract import InitImage, JobSpec, Requester
from imagine.uploads import crop_cell, fit
from tests.bot.fixtures import Front, base_ctx, front, tiny_registry  # noqa: F401
from tests.support.fixtures import discord_patched, fake_discord  # noqa: F401
from worker import delivery, variations
from worker.discord_rest import DiscordError, DiscordREST
from worker.targets import DISCORD_EPOCH_MS, Target


async def queued(front: Front, prompt: str) -> tuple[Any, str, dict[str, Any]]:
    fake, scene = front.fake, front.scene
    inter = await fake.wait_for_ack(
        await fake.slash("imagine", channel_id=scene.channel.id, user_id=scene.alice.id, options={"prompt": prompt})
    )
    await fake.wait_for(lambda: front.conn.get(keys.message(inter.original_message_id or 0)), what="queued")
    job_id = front.job_of_message(inter.original_message_id or 0)
    payload = Job.fetch(job_id, connection=front.conn, serializer=JSONSerializer).args[0]
    return inter, job_id, payload


def edits_of(front: Front, token: str) -> list[Any]:
    return [c for c in front.fake.calls_to("PATCH") if c.status == 200 and f"/{token}/messages/@original" in c.path]


@pytest.mark.asyncio
async def test_status_edits_are_throttled_and_the_latest_wins(front: Front) -> None:
    inter, job_id, payload = await queued(front, "throttled")
    interval = 0.5
    ctx = dataclasses.replace(front.ctx, settings=front.settings.model_copy(update={"progress_interval": interval}))
    before = len(edits_of(front, inter.token))

    def run() -> None:
        courier = delivery.Courier.open(ctx, job_id, payload)
        courier.started()
        start = time.monotonic()
        step = 0
        while time.monotonic() - start < 1.7:
            step += 1
            courier.progress(step, 1000)
            time.sleep(0.01)
        courier.progress(999, 1000)
        time.sleep(interval + 0.2)  # the last state gets its turn
        courier.close()

    await asyncio.to_thread(run)
    worker_edits = edits_of(front, inter.token)[before:]
    times = [c.at for c in worker_edits]
    assert 3 <= len(worker_edits) <= 6, len(worker_edits)
    assert all(b - a >= interval * 0.95 for a, b in itertools.pairwise(times)), times
    assert "generating 999/1000" in worker_edits[-1].json["content"]
    assert worker_edits[-1].json["allowed_mentions"] == {"parse": []}


@pytest.mark.asyncio
async def test_a_job_posts_its_result_once(front: Front) -> None:
    inter, job_id, payload = await queued(front, "only once --seed 4")
    await front.work()
    posted = len(edits_of(front, inter.token))
    result = Job.fetch(job_id, connection=front.conn, serializer=JSONSerializer).return_value()
    from imagine.contract import JobResult

    def again() -> None:
        courier = delivery.Courier.open(front.ctx, job_id, payload)
        courier.finish(JobResult.model_validate(result))  # a retried job, or a second worker
        courier.close()

    await asyncio.to_thread(again)
    assert len(edits_of(front, inter.token)) == posted
    assert front.conn.get(keys.delivered(job_id)) is not None
    assert front.conn.hget(keys.job(job_id), "delivery") == b"interaction"


@pytest.mark.asyncio
async def test_rest_client_retries_429_and_5xx_and_names_refusals(front: Front) -> None:
    fake, channel = front.fake, front.scene.channel.id
    rest = DiscordREST(fake.api_base, fake.token)
    fake.fail_next("/channels/{channel_id}/messages", status=429, retry_after=0.05)
    fake.fail_next("/channels/{channel_id}/messages", status=502)
    sent = await asyncio.to_thread(rest.send, channel, {"content": "hello", "allowed_mentions": {"parse": []}})
    assert sent["content"] == "hello"
    assert [c.status for c in fake.calls_to("POST", "/channels/{channel_id}/messages")] == [429, 502, 200]

    with pytest.raises(DiscordError) as unknown:
        await asyncio.to_thread(rest.send, 1234, {"content": "nowhere"})
    assert (unknown.value.status, unknown.value.code) == (404, 10003) and not unknown.value.token_gone
    with pytest.raises(DiscordError) as expired:
        await asyncio.to_thread(rest.edit_original, fake.application_id, "not-a-token", {"content": "x"})
    assert expired.value.token_gone
    rest.close()


def test_an_expired_interaction_is_not_used() -> None:
    old = int((time.time() - 16 * 60) * 1000 - DISCORD_EPOCH_MS) << 22
    fresh = int(time.time() * 1000 - DISCORD_EPOCH_MS) << 22
    spec = JobSpec(
        prompt="x",
        requester=Requester(application_id=1, interaction_token="t", interaction_id=old, channel_id=2, message_id=3),
    )
    assert not Target.of(spec).token_usable()
    spec = spec.model_copy(update={"requester": spec.requester.model_copy(update={"interaction_id": fresh})})
    assert Target.of(spec).token_usable()
    assert not Target.of(JobSpec(prompt="x")).reachable


def _noise_png(size: int) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8)).save(out, "PNG")
    return out.getvalue()


def test_fit_reencodes_then_shrinks_under_the_limit() -> None:
    data = _noise_png(256)
    assert fit("a.png", data, len(data)) == ("a.png", data)
    name, smaller = fit("a.png", data, 60_000)
    assert len(smaller) <= 60_000 and name.split(".")[1] in ("webp", "jpg")
    name, tiny = fit("a.png", data, 3_000)
    assert len(tiny) <= 3_000
    with Image.open(io.BytesIO(tiny)) as image:
        assert image.width < 256
    cell = crop_cell(data, 3, 4)
    with Image.open(io.BytesIO(cell)) as image:
        assert image.size == (128, 128)


def test_variation_source_is_read_back_at_native_size(conn: redis.Redis) -> None:
    conn.hset(keys.images("src"), "1", _noise_png(128))
    picture = variations.load_source(conn, InitImage(job_id="src", index=1, strength=0.5), 32, 32)
    assert picture.size == (32, 32) and picture.mode == "RGB"
    with pytest.raises(variations.SourceGone, match="no longer kept"):
        variations.load_source(conn, InitImage(job_id="src", index=2, strength=0.5), 32, 32)
    assert variations.denoising_steps(4, 0.5) == 2 and variations.denoising_steps(4, 0.1) == 1


@pytest.mark.asyncio
async def test_a_deleted_status_message_gets_its_result_as_a_new_message(front: Front) -> None:
    import requests

    inter, job_id, _ = await queued(front, "deleted meanwhile --seed 6")
    url = f"{front.fake.api_base}/webhooks/{front.fake.application_id}/{inter.token}/messages/@original"
    assert (await asyncio.to_thread(requests.delete, url, timeout=5)).status_code == 204
    await front.work()
    channel = front.scene.channel.id
    result = await front.fake.wait_for(
        lambda: next((m for m in front.fake.messages(channel) if m.attachments), None), what="the result"
    )
    assert result.mention_user_ids == [front.scene.alice.id] and result.content.startswith(f"<@{front.scene.alice.id}>")
    assert front.conn.hget(keys.job(job_id), "delivery") == b"channel-reply"
    assert front.conn.get(keys.message(result.id)) == job_id.encode()


@pytest.mark.asyncio
async def test_a_deleted_status_message_is_not_edited_again(front: Front) -> None:
    import requests

    inter, job_id, payload = await queued(front, "gone --seed 6")
    url = f"{front.fake.api_base}/webhooks/{front.fake.application_id}/{inter.token}/messages/@original"
    assert (await asyncio.to_thread(requests.delete, url, timeout=5)).status_code == 204

    def edits() -> None:
        courier = delivery.Courier(front.ctx, job_id, JobSpec.model_validate(payload))
        try:
            for step in range(5):  # what a running job's progress would send, one interval apart
                courier.edit_status(f"generating {step}/5", None)
        finally:
            courier.close()

    await asyncio.to_thread(edits)
    refused = [c for c in front.fake.calls_to("PATCH") if c.status == 404]
    assert len(refused) == 1, [c.path for c in refused]  # invalid requests count towards a Cloudflare ban
