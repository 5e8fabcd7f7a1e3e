"""Buttons once the images have left Redis: U and V read the picture back from the result on Discord."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from imagine import keys
from imagine.uploads import crop_cell
from tests.bot.fixtures import Front
from tests.bot.test_generation import imagine

pytestmark = pytest.mark.asyncio


def pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


async def test_u_and_v_fall_back_to_the_attachment(front: Front) -> None:
    fake, scene = front.fake, front.scene
    inter = await imagine(front, "kept on discord --seed 8", count=4)
    await front.work()
    result = await fake.wait_for(
        lambda: (m := fake.message(inter.original_message_id or 0)).components and m, what="the result"
    )
    job_id = front.job_of_message(result.id)
    front.conn.delete(keys.images(job_id))  # a day later

    upscaled = await fake.wait_for_ack(await fake.click(result.id, f"imagine:u:{job_id}:4", user_id=scene.bob.id))
    single = await fake.wait_for(
        lambda: (m := fake.message(upscaled.original_message_id or 0)).attachments and m, what="U4"
    )
    assert np.array_equal(pixels(single.attachments[0].data), pixels(crop_cell(result.attachments[0].data, 3, 4)))

    varied = await fake.wait_for_ack(await fake.click(result.id, f"imagine:v:{job_id}:1", user_id=scene.bob.id))
    await fake.wait_for(lambda: front.conn.get(keys.message(varied.original_message_id or 0)), what="V1 queued")
    assert front.conn.hexists(keys.images(job_id), "0")  # the source is back where a worker looks
    await front.work()
    done = await fake.wait_for(
        lambda: (m := fake.message(varied.original_message_id or 0)).components and m, what="the variation"
    )
    assert "variation of image 1" in done.content


async def test_a_button_on_an_expired_job_says_so(front: Front) -> None:
    fake, scene = front.fake, front.scene
    inter = await imagine(front, "forgotten")
    await front.work()
    result = await fake.wait_for(
        lambda: (m := fake.message(inter.original_message_id or 0)).components and m, what="the result"
    )
    front.conn.delete(keys.job(front.job_of_message(result.id)))
    pressed = await fake.wait_for_ack(await fake.click(result.id, result.custom_ids()[1], user_id=scene.alice.id))
    answer = await fake.wait_for(
        lambda: next((fake.message(m) for m in pressed.followup_ids if fake.message(m).ephemeral), None),
        what="the refusal",
    )
    assert "too old" in answer.content
