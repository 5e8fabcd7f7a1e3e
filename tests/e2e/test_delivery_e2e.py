"""Delivery when things are not simple: a token past its 15 minutes, a result over the upload limit, a bot
restarted between delivery and a button press, and queue positions that move while a job waits."""

from __future__ import annotations

import re
import signal

import pytest

from tests.e2e.conftest import Scene, Stack, png_parameters
from tests.e2e.test_buttons_e2e import job_of, seed_of

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]

LONG = {"prompt": "keeps the worker busy --steps 60", "count": 4}
LONG_TOO = {"prompt": "keeps the worker busy too --steps 59", "count": 4}


async def test_a_result_after_15_minutes_replies_in_the_channel(stack: Stack, scene: Scene) -> None:
    fake = stack.fake
    blocker = await fake.wait_for_ack(
        await fake.slash("imagine", channel_id=scene.channel_id, user_id=scene.bob.id, options=LONG)
    )
    # In the queue before ours: the bot handles two requests at once, and ours must not be the one taken first.
    await stack.wait(lambda: stack.conn.get(f"imagine:message:{blocker.original_message_id}"), "the blocker enqueued")
    inter = await fake.slash(
        "imagine",
        channel_id=scene.channel_id,
        user_id=scene.alice.id,
        options={"prompt": "late @everyone --seed 9 --steps 2"},
    )
    inter = await fake.wait_for_ack(inter)
    job_id = (
        await stack.wait(lambda: stack.conn.get(f"imagine:message:{inter.original_message_id}"), "the job enqueued")
    ).decode()
    await fake.advance_clock(15 * 60 + 1)  # every token expires while our job still waits behind the blocker
    assert stack.conn.hget(f"imagine:job:{job_id}", "status") == b"queued", "the blocker was too short"
    late = await stack.wait(
        lambda: next(
            (
                m
                for m in fake.messages(scene.channel_id)
                if m.message_reference
                and int(m.message_reference["message_id"]) == inter.original_message_id
                and m.attachments
            ),
            None,
        ),
        "the late result in the channel",
    )
    assert late.webhook_id is None  # a channel message with the bot token, not the interaction webhook
    assert late.content.startswith(f"<@{scene.alice.id}>")
    assert late.mention_user_ids == [scene.alice.id] and not late.mention_everyone and not late.mention_role_ids
    params = png_parameters(late.attachments[0].data)
    assert params is not None and seed_of(params) == 9
    assert any(c.startswith("imagine:r:") for c in late.custom_ids())
    # Buttons on the late result work like any other.
    again = await fake.click(late.id, f"imagine:r:{job_of(late)}", user_id=scene.alice.id)
    await stack.answered(again)
    # The blocker finished late too: its status message now points to its reply.
    await stack.wait(lambda: "finished" in fake.message(blocker.original_message_id or 0).content, "the blocker")


async def test_an_oversized_result_is_re_encoded_under_the_limit(stack: Stack, scene: Scene) -> None:
    fake = stack.fake
    limit = 40_000
    await fake.set_upload_limit(stack.guild.id, limit)
    try:
        result = await stack.imagine(scene, "too big for this server --seed 1 --steps 2", count=4)
    finally:
        await fake.set_upload_limit(stack.guild.id, 10 * 1024 * 1024)
    attachment = result.attachments[0]
    assert attachment.size <= limit
    assert attachment.content_type in ("image/webp", "image/jpeg") and not attachment.filename.endswith(".png")
    assert (attachment.width, attachment.height) == (256, 256)
    # The original PNG would not have fitted.
    big = await stack.imagine(scene, "too big for this server --seed 1 --steps 2", count=4)
    assert big.attachments[0].size > limit and big.attachments[0].content_type == "image/png"


async def test_buttons_work_after_the_bot_restarts(stack: Stack, scene: Scene) -> None:
    fake = stack.fake
    inter = await fake.slash(
        "imagine",
        channel_id=scene.channel_id,
        user_id=scene.alice.id,
        options={"prompt": "survives a restart --seed 31 --steps 2"},
    )
    inter = await fake.wait_for_ack(inter)
    await stack.wait(lambda: stack.conn.get(f"imagine:message:{inter.original_message_id}"), "the job enqueued")
    await stack.bot.stop(signal.SIGKILL)  # the worker delivers without the bot
    result = await stack.result_of(inter.original_message_id or 0)
    await stack.start_bot()
    rerolled = await stack.answered(await fake.click(result.id, f"imagine:r:{job_of(result)}", user_id=scene.bob.id))
    params = png_parameters(rerolled.attachments[0].data)
    assert params is not None and seed_of(params) != 31
    await fake.react(result.id, "❌", user_id=scene.alice.id)  # reactions on a message the new bot never cached
    await stack.wait(lambda: fake.message(result.id).deleted, "delete by reaction after the restart")


async def test_queue_positions_move_up_while_waiting(stack: Stack, scene: Scene) -> None:
    fake = stack.fake
    first = await fake.slash("imagine", channel_id=scene.channel_id, user_id=scene.bob.id, options=LONG)
    await fake.wait_for_ack(first)
    # Not quite the same request, so a batching worker cannot run it together with the first.
    second = await fake.wait_for_ack(
        await fake.slash("imagine", channel_id=scene.channel_id, user_id=scene.bob.id, options=LONG_TOO)
    )
    await stack.wait(lambda: stack.conn.get(f"imagine:message:{second.original_message_id}"), "the second enqueued")
    # Bob's own third job (fair order would put a job of alice's ahead of bob's second).
    third = await fake.slash(
        "imagine", channel_id=scene.channel_id, user_id=scene.bob.id, options={"prompt": "third in line --steps 2"}
    )
    result = await stack.answered(third, timeout=120)
    await stack.answered(second)
    await stack.answered(first)
    shown = [
        int(n)
        for e in [*result.edits, {"content": result.content}]
        for n in re.findall(r"#(\d+) in queue", e["content"])
    ]
    assert shown[0] >= 2 and shown[-1] == 1 and shown == sorted(shown, reverse=True), shown


async def test_bad_flags_get_one_private_line_and_no_public_trace(stack: Stack, scene: Scene) -> None:
    fake = stack.fake
    for prompt, expected in (
        ("a cat --ar 0:0", "above zero"),
        ("a cat --seed -1", "whole number"),
        ("a cat --steps 1e9", "whole number"),
        ("a cat --wat 3", "not a flag"),
        ("a cat --steps 999", "steps must be at most"),
        ("a cat --model nope", "no model"),
    ):
        inter = await fake.wait_for_ack(
            await fake.slash("imagine", channel_id=scene.channel_id, user_id=scene.alice.id, options={"prompt": prompt})
        )
        answer = await stack.wait(
            lambda i=inter: next((fake.message(m) for m in i.followup_ids if fake.message(m).ephemeral), None),
            f"the refusal of {prompt}",
        )
        assert expected in answer.content, (prompt, answer.content)
        assert fake.world.messages[inter.original_message_id or 0].deleted  # the public "thinking…" is gone
    assert [m for m in fake.messages(scene.channel_id) if not m.ephemeral] == []
