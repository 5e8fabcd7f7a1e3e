"""imagine/tokens.py with the worker's delivery: the interaction token lives only in its own 15-minute key, is used
while it lives, and is nowhere else in Redis after a success, a failure, or a message kept in the outbox."""

# ruff: noqa: F811  (fixtures imported from tests.bot.fixtures are parameters here)

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from imagine import keys, tokens
from tests.bot.fixtures import Front, base_ctx, front, tiny_registry  # noqa: F401
from tests.scan import keys_holding
from tests.support.fixtures import discord_patched, fake_discord  # noqa: F401
from tests.worker.test_delivery import edits_of, queued

pytestmark = pytest.mark.asyncio


async def test_after_a_success_the_token_is_nowhere_in_redis(front: Front) -> None:
    inter, job_id, payload = await queued(front, "kept secret --seed 2")
    assert payload["requester"]["interaction_token"] is None  # not in RQ's job data
    assert keys_holding(front.conn, inter.token) == [keys.token(job_id)]
    assert 0 < front.conn.ttl(keys.token(job_id)) <= tokens.LIFETIME_S
    await front.work()
    assert front.conn.hget(keys.job(job_id), "delivery") == b"interaction"  # it was used while it lived
    assert edits_of(front, inter.token)
    assert keys_holding(front.conn, inter.token) == []


async def test_after_a_failure_and_in_the_outbox_the_token_is_only_in_its_own_key(front: Front) -> None:
    inter, job_id, _payload = await queued(front, "refused by the worker --steps 8")
    strict = dataclasses.replace(front.ctx, settings=front.settings.model_copy(update={"max_steps": 4}))
    # Discord refuses the failure notice: it goes to the outbox, which keeps it for a day.
    front.fake.fail_next("/webhooks/*", status=502, count=1000)
    front.fake.fail_next("/channels/*", status=502, count=1000)
    front.ctx = strict
    await front.work()
    front.fake.clear_faults()
    assert front.conn.hget(keys.job(job_id), "status") == b"failed"
    assert front.conn.zscore(keys.OUTBOX, job_id) is not None  # kept for later
    assert keys_holding(front.conn, inter.token) == [keys.token(job_id)]
    assert keys_holding(front.conn, "refused by the worker")  # the scan does see what is there
    # Once it is posted (Discord answers again), the token goes too.
    from worker import delivery, outbox

    def retry() -> dict[str, int]:
        rest = delivery.rest_client(strict)
        try:
            return outbox.retry_due(strict, rest, now=10**12)
        finally:
            rest.close()

    assert (await asyncio.to_thread(retry))["posted"] == 1
    assert keys_holding(front.conn, inter.token) == []
