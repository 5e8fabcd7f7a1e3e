"""Attacks, through real bot and worker processes, the fake Discord and a real Redis: each gets its clear private
refusal (or, for a reaction, nothing), nothing is stored, nothing runs, and the server's moderator log records it."""

from __future__ import annotations

import asyncio
import io
import json
import os

import pytest
from PIL import Image
from rq import Queue
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from imagine import keys, moderation, queue
from imagine.contract import JobSpec, Requester
from tests.e2e.conftest import Scene, Stack
from tests.e2e.test_buttons_e2e import job_of
from tests.support.actions import Upload
from tests.support.state import Interaction, Message

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]


async def private_answer(stack: Stack, inter: Interaction, what: str) -> Message:
    """The one ephemeral line an interaction was answered with (as a reply or a follow-up)."""
    fake = stack.fake
    inter = await fake.wait_for_ack(inter, timeout=10)

    def found() -> Message | None:
        ids = [inter.original_message_id or 0, *inter.followup_ids]
        return next((fake.message(m) for m in ids if m and fake.message(m).ephemeral and fake.message(m).content), None)

    return await stack.wait(found, what)


def refusals(stack: Stack, user_id: int) -> list[str]:
    """What the server's moderator log says was refused to `user_id`."""
    return [
        a.detail
        for a in moderation.history(stack.conn, stack.guild.id, 50)
        if a.actor == user_id and a.action == "was refused"
    ]


def public_after(stack: Stack, scene: Scene, message_id: int) -> list[Message]:
    return [m for m in stack.fake.messages(scene.channel_id) if m.id > message_id and not m.ephemeral]


def stored_uploads(stack: Stack) -> list[bytes]:
    return list(stack.conn.scan_iter("imagine:images:upload-*"))


async def test_a_button_naming_another_servers_job_is_refused(stack: Stack, scene: Scene) -> None:
    fake = stack.fake
    mine = await stack.imagine(scene, "my own --steps 2")
    # A job of another server, as its record stands in the shared Redis.
    theirs = queue.new_job_id()
    spec = JobSpec(prompt="their secret prompt", seed=1, requester=Requester(guild_id=stack.guild.id + 1, user_id=1))
    stack.conn.hset(keys.job(theirs), mapping={"spec": json.dumps(spec.public()), "status": "done", "count": "1"})
    stack.conn.hset(keys.images(theirs), "0", mine.attachments[0].data)
    crafted = (f"imagine:i:{theirs}", f"imagine:u:{theirs}:1", f"imagine:r:{theirs}")
    # A result of this server whose buttons name that job (discord.py and Discord only route presses of buttons
    # a message has): however it came about, the button's job id is not to be trusted.
    buttons = [{"type": 2, "style": 2, "label": c[8], "custom_id": c} for c in crafted]
    fake.world.messages[mine.id].components.append({"type": 1, "components": buttons})
    for action in crafted:
        inter = await fake.click(mine.id, action, user_id=scene.bob.id)
        answer = await private_answer(stack, inter, f"the refusal of {action}")
        assert "does not belong to an image of this server" in answer.content, answer.content
        assert "secret" not in answer.content
    assert public_after(stack, scene, mine.id) == []  # no image re-posted, no job started
    assert any(theirs[:32] in detail for detail in refusals(stack, scene.bob.id))


async def test_a_blocked_member_pressing_u_gets_a_private_no(stack: Stack, scene: Scene) -> None:
    fake = stack.fake
    result = await stack.imagine(scene, "not for bob --steps 2", count=2)
    moderation.block(stack.conn, stack.guild.id, scene.bob.id)
    try:
        for custom_id in (
            f"imagine:u:{job_of(result)}:1",
            f"imagine:v:{job_of(result)}:2",
            f"imagine:r:{job_of(result)}",
        ):
            inter = await fake.click(result.id, custom_id, user_id=scene.bob.id)
            answer = await private_answer(stack, inter, f"the refusal of {custom_id}")
            assert "cannot ask for images on this server" in answer.content, answer.content
        assert public_after(stack, scene, result.id) == []
        assert stack.conn.hlen(keys.images(job_of(result))) == 2  # V2's source was not fetched again or stored
        assert any("the U1 button: blocked" in detail for detail in refusals(stack, scene.bob.id))
    finally:
        moderation.unblock(stack.conn, stack.guild.id, scene.bob.id)


async def test_a_blocked_members_attachment_is_never_read(stack: Stack, scene: Scene) -> None:
    moderation.block(stack.conn, stack.guild.id, scene.bob.id)
    try:
        picture = io.BytesIO()
        Image.new("RGB", (64, 64), "red").save(picture, format="PNG")
        inter = await stack.fake.slash(
            "imagine",
            channel_id=scene.channel_id,
            user_id=scene.bob.id,
            options={"prompt": "with a picture", "image": Upload("red.png", picture.getvalue())},
        )
        answer = await private_answer(stack, inter, "the blocked member's refusal")
        assert "cannot ask for images on this server" in answer.content
        assert stored_uploads(stack) == []
    finally:
        moderation.unblock(stack.conn, stack.guild.id, scene.bob.id)


@pytest.mark.parametrize("kind", ["oversized", "bomb"])
async def test_hostile_attachments_are_refused_and_not_kept(stack: Stack, scene: Scene, kind: str) -> None:
    fake = stack.fake
    if kind == "oversized":
        upload = Upload("huge.png", os.urandom(11 * 1024 * 1024))
        expected = "the most I take is 10.0 MB"
    else:  # 64 megapixels claimed by a file of a few kilobytes
        bomb = io.BytesIO()
        Image.new("1", (8000, 8000)).save(bomb, format="PNG", optimize=True)
        assert len(bomb.getvalue()) < 100_000
        upload, expected = Upload("bomb.png", bomb.getvalue()), "megapixels"
    jobs_before = Queue(keys.IMAGE_QUEUE, connection=stack.conn).count
    inter = await fake.slash(
        "imagine",
        channel_id=scene.channel_id,
        user_id=scene.alice.id,
        options={"prompt": f"from a {kind} file", "image": upload},
    )
    answer = await private_answer(stack, inter, f"the refusal of the {kind} file")
    assert expected in answer.content, answer.content
    assert stored_uploads(stack) == []
    assert Queue(keys.IMAGE_QUEUE, connection=stack.conn).count == jobs_before
    assert [m for m in fake.messages(scene.channel_id) if not m.ephemeral and not m.deleted] == []
    assert any("an attachment" in detail for detail in refusals(stack, scene.alice.id))


async def test_a_reaction_on_another_bots_message_does_nothing(stack: Stack, scene: Scene) -> None:
    fake = stack.fake
    other_bot = await fake.create_member(stack.guild.id, f"otherbot{scene.channel_id}", bot=True)
    theirs = await fake.post_message(scene.channel_id, other_bot.id, "a message of another bot")
    # Even when Redis links that message to a job of this server (a forged or stale link), it is not ours.
    job_id = queue.new_job_id()
    spec = JobSpec(prompt="forged", seed=1, requester=Requester(guild_id=stack.guild.id, user_id=scene.alice.id))
    stack.conn.hset(
        keys.job(job_id),
        mapping={"spec": json.dumps(spec.public()), "status": "done", "count": "1", "message_id": str(theirs.id)},
    )
    stack.conn.set(keys.message(theirs.id), job_id)
    await fake.react(theirs.id, "🔄", user_id=scene.alice.id)
    # Then something that does act: once its answer is there, the bot has long seen (and skipped) the first.
    result = await stack.imagine(scene, "after the reaction --steps 2")
    await asyncio.sleep(1)
    posted = [m for m in fake.messages(scene.channel_id) if not m.ephemeral and m.id not in (theirs.id, result.id)]
    assert posted == [], [m.content for m in posted]


async def test_a_crafted_job_in_redis_fails_in_the_real_worker_and_runs_nothing(
    stack: Stack, scene: Scene, tmp_path
) -> None:
    touched = tmp_path / "touched"
    rq_queue = Queue(keys.IMAGE_QUEUE, connection=stack.conn, serializer=JSONSerializer)
    crafted = rq_queue.enqueue_job(rq_queue.create_job("os.system", args=(f"touch {touched}",)))
    await stack.wait(
        lambda: (
            Job.fetch(crafted.id, connection=stack.conn, serializer=JSONSerializer).get_status() == JobStatus.FAILED
        ),
        "the worker to fail the crafted job",
    )
    assert not touched.exists()
    result = await stack.imagine(scene, "the worker goes on --steps 2")  # and it still works
    assert result.attachments
