"""/imagine through real processes: defer within 3 s, queue position, progress edits, the grid with its buttons."""

from __future__ import annotations

import itertools
import re

import pytest

from imagine import keys
from tests.e2e.conftest import PROGRESS_INTERVAL, Scene, Stack, png_parameters

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]


async def test_imagine_defers_queues_progresses_and_delivers(stack: Stack, scene: Scene) -> None:
    fake = stack.fake
    # A longer job first, so ours waits in the queue and its position is shown and then moved up by the worker.
    blocker = await fake.slash(
        "imagine",
        channel_id=scene.channel_id,
        user_id=scene.bob.id,
        options={"prompt": "a long one --steps 40", "count": 4},
    )
    # Ours is sent only once the blocker is queued: two commands at once may reach the queue in either order.
    blocker = await fake.wait_for_ack(blocker, timeout=5)
    await stack.wait(lambda: stack.conn.get(keys.message(blocker.original_message_id or 0)), "the blocker queued")
    inter = await fake.slash(
        "imagine",
        channel_id=scene.channel_id,
        user_id=scene.alice.id,
        options={"prompt": "a red cube --seed 42 --steps 8 --cfg 5", "count": 4, "negative": "blur"},
    )
    inter = await fake.wait_for_ack(inter, timeout=5)
    assert inter.acked_at is not None and inter.acked_at - inter.created_at < 3.0
    assert inter.ack_type == 5  # deferred: "thinking…", then the worker takes over the message

    result = await stack.answered(inter)
    await stack.answered(blocker)
    history = [edit["content"] for edit in result.edits] + [result.content]
    queued = [text for text in history if re.search(r"#\d+ in queue", text)]
    progress = [text for text in history if re.search(r"generating \d+/8", text)]
    assert queued, history
    assert progress, history
    assert history.index(queued[0]) < history.index(progress[0])
    # A small preview rides along with the progress.
    assert any(e["attachments"] for e in result.edits if "generating" in e["content"]), result.edits
    print(f"\n/imagine acknowledged in {(inter.acked_at - inter.created_at) * 1000:.0f} ms")

    # The grid: a PNG whose parameters are the request's, and the rows of buttons.
    assert len(result.attachments) == 1
    attachment = result.attachments[0]
    assert attachment.content_type == "image/png" and (attachment.width, attachment.height) == (256, 256)
    params = png_parameters(attachment.data)
    assert params is not None
    assert params.startswith("a red cube\nNegative prompt: blur\n")
    assert "Steps: 8," in params and "CFG scale: 5," in params and "Seed: 42," in params
    assert "Size: 32x32" in params and "Model: tiny" in params
    ids = result.custom_ids()
    job_id = ids[0].split(":")[2]
    expected = {f"imagine:{a}:{job_id}:{i}" for a in "uv" for i in range(1, 5)}
    expected |= {f"imagine:{a}:{job_id}" for a in "reid"}
    assert set(ids) == expected
    assert "seed 42–45" in result.content and result.allowed_mentions == {"parse": []}

    # Status edits of one message are at least the progress interval apart (the final result excepted).
    edit_times = [
        c.at
        for c in fake.calls_to("PATCH")
        if c.path.endswith("/messages/@original") and c.status == 200 and c.path.split("/")[3] == inter.token
    ]
    status_edits = edit_times[:-1]
    gaps = [b - a for a, b in itertools.pairwise(status_edits)]
    assert all(gap >= PROGRESS_INTERVAL * 0.9 for gap in gaps), gaps

    # Secrets never reach a log line: neither the interaction token nor the bot token.
    logs = stack.worker.log.read_text() + stack.bot.log.read_text()
    assert inter.token not in logs and fake.token not in logs


async def test_everyone_in_a_prompt_pings_nobody(stack: Stack, scene: Scene) -> None:
    fake = stack.fake
    prompt = f"@everyone @here <@{scene.bob.id}> look at this"
    inter = await fake.slash("imagine", channel_id=scene.channel_id, user_id=scene.alice.id, options={"prompt": prompt})
    result = await stack.answered(inter)
    assert "@everyone" in result.content
    for msg in fake.messages(scene.channel_id):
        assert not msg.mention_everyone and not msg.mention_user_ids and not msg.mention_role_ids, msg.content
