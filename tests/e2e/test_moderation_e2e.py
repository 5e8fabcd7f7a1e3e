"""Moderation with the real bot and worker processes: a paused server's jobs wait in Redis while the worker idles,
a ❌ on a waiting job's message cancels it, and on resume the worker runs what is left, and only that."""

from __future__ import annotations

import asyncio

import pytest
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from imagine import ui
from tests.e2e.conftest import Scene, Stack
from tests.support import permissions as P

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]


async def test_pause_cross_out_and_resume(stack: Stack, scene: Scene) -> None:
    fake = stack.fake
    staff = await fake.create_role(stack.guild.id, f"Staff-{scene.channel_id}", P.MANAGE_GUILD)
    boss = await fake.create_member(stack.guild.id, f"boss-{scene.channel_id}", roles=[staff.id])

    async def mod(sub: str) -> str:
        inter = await fake.wait_for_ack(
            await fake.slash("mod", channel_id=scene.channel_id, user_id=boss.id, subcommand=sub), timeout=10
        )
        shown = await stack.wait(lambda: fake.message(inter.original_message_id or 0).content, f"/mod {sub}")
        return str(shown)

    assert "Paused" in await mod("pause")
    try:
        asked = []
        for who, prompt in ((scene.alice, "crossed out --steps 2"), (scene.bob, "kept --steps 2")):
            inter = await fake.wait_for_ack(
                await fake.slash("imagine", channel_id=scene.channel_id, user_id=who.id, options={"prompt": prompt}),
                timeout=10,
            )
            job_id = await stack.wait(lambda i=inter: stack.conn.get(f"imagine:message:{i.original_message_id}"), "q")
            asked.append((inter, job_id.decode()))
        (crossed, crossed_id), (kept, kept_id) = asked
        await asyncio.sleep(2)  # the worker is idle and listening: nothing of this server runs
        for job_id in (crossed_id, kept_id):
            job = Job.fetch(job_id, connection=stack.conn, serializer=JSONSerializer)
            assert job.get_status() == JobStatus.QUEUED, stack.logs()
        assert "⏸️ paused" in await mod("queue")
        await fake.react(crossed.original_message_id or 0, ui.REACTION_DELETE, user_id=scene.alice.id)
        await stack.wait(lambda: "🚫" in fake.message(crossed.original_message_id or 0).content, "the cross")
    finally:
        assert "Resumed" in await mod("resume")
    result = await stack.answered(kept)
    assert result.attachments
    job = Job.fetch(crossed_id, connection=stack.conn, serializer=JSONSerializer)
    assert job.get_status() == JobStatus.CANCELED
    assert not fake.message(crossed.original_message_id or 0).attachments
    assert "paused the queue" in await mod("log") and "resumed the queue" in await mod("log")
