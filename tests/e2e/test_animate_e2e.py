"""/animate through real processes: defer, progress, then an MP4 (or a GIF) that a decoder reads back as asked,
with the buttons a clip has; re-roll and delete by button and by reaction."""

from __future__ import annotations

import io
import re
from pathlib import Path

import av
import pytest
from PIL import Image

from tests.e2e.conftest import Scene, Stack
from tests.e2e.test_reactions_e2e import reply_to

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]


@pytest.fixture(scope="module", autouse=True)
def tiny_clips(data_dir: Path) -> Path:
    """Build the tiny clip model where the worker looks for it, before the first /animate (not inside its wait)."""
    from models.clips import tiny

    return tiny.ensure(data_dir / "models" / "tiny-clips")


def job_of(message: object) -> str:
    return message.custom_ids()[0].split(":")[2]  # type: ignore[attr-defined]


def decoded(data: bytes) -> dict:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        return {
            "codec": stream.codec_context.name,
            "pix_fmt": stream.codec_context.pix_fmt,
            "fps": stream.average_rate,
            "frames": sum(1 for _ in container.decode(video=0)),
            "comment": container.metadata.get("comment", ""),
        }


async def test_animate_progresses_then_posts_an_h264_mp4_with_the_asked_frames_and_fps(
    stack: Stack, scene: Scene
) -> None:
    fake = stack.fake
    inter = await fake.slash(
        "animate",
        channel_id=scene.channel_id,
        user_id=scene.alice.id,
        options={"prompt": "a red circle moving right --seed 5 --steps 6", "frames": 6, "fps": 12, "negative": "blur"},
    )
    inter = await fake.wait_for_ack(inter, timeout=5)
    assert inter.acked_at is not None and inter.acked_at - inter.created_at < 3.0 and inter.ack_type == 5
    result = await stack.answered(inter)

    history = [edit["content"] for edit in result.edits] + [result.content]
    assert any(re.search(r"generating \d+/6", text) for text in history), history
    # The status shows a small preview of the clip's first frame while it runs.
    assert any(e["attachments"] for e in result.edits if "generating" in e["content"]), result.edits

    assert len(result.attachments) == 1
    attachment = result.attachments[0]
    assert attachment.filename.endswith(".mp4") and attachment.content_type == "video/mp4"
    found = decoded(attachment.data)
    assert found["codec"] == "h264" and found["pix_fmt"] == "yuv420p"
    assert found["frames"] == 6 and found["fps"] == 12
    assert found["comment"].startswith("a red circle moving right\nNegative prompt: blur\n")
    assert "Seed: 5," in found["comment"] and "Frames: 6, FPS: 12" in found["comment"]
    assert "6 frames at 12 fps" in result.content and "seed 5" in result.content

    job_id = job_of(result)
    assert set(result.custom_ids()) == {f"imagine:{a}:{job_id}" for a in "rid"}

    # 🔄 re-roll: the same clip request with a new seed, posted as a new result.
    again = await fake.wait_for_ack(await fake.click(result.id, f"imagine:r:{job_id}", user_id=scene.bob.id))
    rerolled = await stack.result_of(again.original_message_id or 0)
    found = decoded(rerolled.attachments[0].data)
    assert found["frames"] == 6 and found["fps"] == 12 and "Seed: 5," not in found["comment"]

    # ℹ️ info, privately; 🗑️ delete by the requester.
    info = await fake.wait_for_ack(await fake.click(result.id, f"imagine:i:{job_id}", user_id=scene.alice.id))
    answer = await stack.wait(
        lambda: (m := fake.message(info.original_message_id or 0)) and m.content and m, "the info answer"
    )
    assert answer.ephemeral and "6 frames at 12 fps" in answer.content and "seed 5" in answer.content
    await fake.wait_for_ack(await fake.click(result.id, f"imagine:d:{job_id}", user_id=scene.alice.id))
    await stack.wait(lambda: fake.message(result.id).deleted, "the requester's delete")


async def test_animate_as_gif_and_reactions_on_a_clip(stack: Stack, scene: Scene) -> None:
    fake = stack.fake
    inter = await fake.slash(
        "animate",
        channel_id=scene.channel_id,
        user_id=scene.alice.id,
        options={"prompt": "a blue star spinning", "frames": 5, "fps": 10, "format": "gif", "steps": 2},
    )
    result = await stack.answered(inter)
    attachment = result.attachments[0]
    assert attachment.filename.endswith(".gif") and attachment.content_type == "image/gif"
    with Image.open(io.BytesIO(attachment.data)) as gif:
        assert gif.n_frames == 5 and gif.info["duration"] == 100 and gif.size == (128, 128)
        assert b"Frames: 5, FPS: 10" in gif.info["comment"]

    last = max(m.id for m in fake.messages(scene.channel_id))
    await fake.react(result.id, "🔄", user_id=scene.bob.id)
    rerolled = await stack.result_of(await reply_to(stack, scene, result.id, last))
    assert rerolled.attachments[0].filename.endswith(".gif")
    await fake.react(result.id, "❌", user_id=scene.alice.id)
    await stack.wait(lambda: fake.message(result.id).deleted, "the requester's ❌")


async def test_animate_refuses_an_image_model_and_image_flags(stack: Stack, scene: Scene) -> None:
    fake = stack.fake
    for options, expected in (
        ({"prompt": "a red circle", "model": "tiny"}, "not a clip model"),
        ({"prompt": "a red circle --ar 16:9"}, "for images"),
    ):
        inter = await fake.wait_for_ack(
            await fake.slash("animate", channel_id=scene.channel_id, user_id=scene.alice.id, options=options)
        )
        answer = await stack.wait(
            lambda i=inter: next((fake.message(m) for m in i.followup_ids if fake.message(m).ephemeral), None),
            f"the refusal of {options}",
        )
        assert expected in answer.content, (options, answer.content)
        assert fake.world.messages[inter.original_message_id or 0].deleted  # the public "thinking…" is gone
