"""Members and the queue through the fake Discord: /queue, /cancel, ❌ on a pending message, and the limits'
refusals as a member reads them (private, naming the limit and when to try again, no public trace)."""

from __future__ import annotations

import pytest
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from imagine import fair, keys, limits, moderation, ui
from tests.bot.fixtures import Front
from tests.bot.test_generation import imagine
from tests.bot.test_moderation import Staff, answer_of, job_id_of, member_cmd, staff  # noqa: F401

pytestmark = pytest.mark.asyncio


def canceled(front: Front, job_id: str) -> bool:
    return Job.fetch(job_id, connection=front.conn, serializer=JSONSerializer).get_status() == JobStatus.CANCELED


async def test_queue_shows_only_my_jobs_and_their_places(front: Front) -> None:
    scene = front.scene
    await imagine(front, "alice one")
    await imagine(front, "alice two")
    await imagine(front, "bob one", user=scene.bob.id)
    mine = (await member_cmd(front, scene.alice, "queue")).content
    # Fair order: bob's first job goes before alice's second.
    assert "#1 in queue — *alice one*" in mine and "#3 in queue — *alice two*" in mine
    assert "bob" not in mine
    assert "#2 in queue — *bob one*" in (await member_cmd(front, scene.bob, "queue")).content
    assert "no jobs" in (await member_cmd(front, front.scene.mod, "queue")).content


async def test_cancel_my_latest_or_a_chosen_job_but_not_others(front: Front) -> None:
    fake, scene = front.fake, front.scene
    first = await imagine(front, "first")
    second = await imagine(front, "second")
    bobs = await imagine(front, "bob's", user=scene.bob.id)
    done = await member_cmd(front, scene.alice, "cancel")
    assert done.ephemeral and "Cancelled *second*" in done.content
    assert canceled(front, job_id_of(front, second))
    assert "🚫 cancelled" in fake.message(second.original_message_id or 0).content
    choices = await fake.autocomplete(
        "cancel", channel_id=scene.channel.id, user_id=scene.alice.id, focused="job", options={"job": ""}
    )
    assert [c["value"] for c in choices] == [job_id_of(front, first)]
    refused = await member_cmd(front, scene.alice, "cancel", job=job_id_of(front, bobs))
    assert "no such job" in refused.content and not canceled(front, job_id_of(front, bobs))
    await member_cmd(front, scene.alice, "cancel", job=job_id_of(front, first)[:6])
    assert canceled(front, job_id_of(front, first))
    assert fair.order(front.conn) == [job_id_of(front, bobs)]


async def test_a_cross_on_a_pending_message_cancels_it(front: Front, staff: Staff) -> None:  # noqa: F811
    fake, scene = front.fake, front.scene
    mine = await imagine(front, "cross me out")
    bobs = await imagine(front, "not yours", user=scene.bob.id)
    other = await imagine(front, "a moderator's cross", user=scene.bob.id)
    await fake.react(bobs.original_message_id or 0, ui.REACTION_DELETE, user_id=scene.alice.id)
    await fake.react(mine.original_message_id or 0, ui.REACTION_DELETE, user_id=scene.alice.id)
    await fake.wait_for(lambda: "🚫" in fake.message(mine.original_message_id or 0).content, what="cancelled")
    assert canceled(front, job_id_of(front, mine))
    assert not canceled(front, job_id_of(front, bobs))  # alice may not cancel bob's
    await fake.react(other.original_message_id or 0, ui.REACTION_DELETE, user_id=staff.dave.id)
    await fake.wait_for(lambda: canceled(front, job_id_of(front, other)), what="cancelled by a moderator")
    logged = await fake.wait_for(lambda: moderation.history(front.conn, scene.guild.id), what="the log entry")
    assert logged[0].actor == staff.dave.id and logged[0].action == "cancelled"
    await front.work()
    assert fake.message(bobs.original_message_id or 0).attachments  # the one left ran
    assert not fake.message(mine.original_message_id or 0).attachments


async def test_counting_limits_refuse_at_the_edge_with_when(front: Front) -> None:
    fake, scene = front.fake, front.scene
    guild_id = scene.guild.id
    limits.store(front.conn, guild_id, "member_active", 2)
    await imagine(front, "one")
    await imagine(front, "two")
    inter = await fake.slash(
        "imagine", channel_id=scene.channel.id, user_id=scene.alice.id, options={"prompt": "three"}
    )
    refusal = await answer_of(fake, inter)
    assert refusal.ephemeral
    assert "you already have 2 jobs queued or running here" in refusal.content
    assert "when one of them finishes" in refusal.content
    assert [m for m in fake.messages(scene.channel.id) if not m.ephemeral and "three" in m.content] == []
    limits.store(front.conn, guild_id, "member_active", 10)
    limits.store(front.conn, guild_id, "member_hourly", 3)
    await imagine(front, "three")
    inter = await fake.slash("imagine", channel_id=scene.channel.id, user_id=scene.alice.id, options={"prompt": "four"})
    refusal = await answer_of(fake, inter)
    assert "3 jobs in the last hour" in refusal.content and "try again in 60 min" in refusal.content
    limits.store(front.conn, guild_id, "queue_depth", 3)
    limits.store(front.conn, guild_id, "member_hourly", 10)
    inter = await fake.slash("imagine", channel_id=scene.channel.id, user_id=scene.bob.id, options={"prompt": "bob"})
    assert "this server's queue is full (3 jobs)" in (await answer_of(fake, inter)).content


async def test_request_limits_refuse_at_the_edge(front: Front) -> None:
    fake, scene = front.fake, front.scene
    guild_id = scene.guild.id
    limits.store(front.conn, guild_id, "max_steps", 3)
    limits.store(front.conn, guild_id, "max_count", 2)
    limits.store(front.conn, guild_id, "max_pixels", 32 * 32)
    cases = {
        "a --steps 4": "at most 3 steps",
        "a --ar 2:1": "at most 1,024 pixels",
    }
    for prompt, says in cases.items():
        inter = await fake.slash(
            "imagine", channel_id=scene.channel.id, user_id=scene.alice.id, options={"prompt": prompt}
        )
        assert says in (await answer_of(fake, inter)).content, prompt
    inter = await fake.slash(
        "imagine", channel_id=scene.channel.id, user_id=scene.alice.id, options={"prompt": "a", "count": 3}
    )
    assert "at most 2 images per request" in (await answer_of(fake, inter)).content
    await imagine(front, "just under --steps 3", count=2)
    assert len(fair.order(front.conn)) == 1


async def test_a_refused_reaction_leaves_no_status_message(front: Front) -> None:
    fake, scene = front.fake, front.scene
    inter = await imagine(front, "to re-roll")
    await front.work()
    result = await fake.wait_for(lambda: (m := fake.message(inter.original_message_id or 0)).components and m, what="r")
    moderation.block(front.conn, scene.guild.id, scene.bob.id)
    before = len(fake.messages(scene.channel.id))
    await fake.react(result.id, ui.REACTION_REROLL, user_id=scene.bob.id)
    await fake.react(result.id, ui.REACTION_REROLL, user_id=scene.alice.id)  # allowed: a status message appears

    def settled() -> bool:
        shown = fake.messages(scene.channel.id)[before:]
        return len(shown) == 1 and f"<@{scene.alice.id}>" in shown[0].content

    await fake.wait_for(settled, what="alice's re-roll shown, bob's refused one gone")
    assert front.conn.zcard(keys.member(scene.guild.id, scene.bob.id, "active")) == 0
    # The status message is posted before the enqueue (so the job can name it): wait for the enqueue itself.
    alice_active = keys.member(scene.guild.id, scene.alice.id, "active")
    await fake.wait_for(lambda: front.conn.zcard(alice_active) == 1, what="alice's re-roll enqueued")
