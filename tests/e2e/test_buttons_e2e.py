"""Every button under a result, through real bot and worker processes: what it does, and who may press it."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
from PIL import Image

from imagine.uploads import crop_cell
from tests.e2e.conftest import STRENGTH, Scene, Stack, png_parameters
from tests.support.state import Message

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]


def job_of(result: Message) -> str:
    return next(c for c in result.custom_ids() if c.startswith("imagine:r:")).split(":")[2]


def seed_of(params: str) -> int:
    return int(params.split("Seed: ")[1].split(",")[0])


def pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"), dtype=float)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


async def press(stack: Stack, result: Message, custom_id: str, user_id: int) -> Message:
    """Press a button that starts something new; return the message it answered with once it is finished."""
    inter = await stack.fake.click(result.id, custom_id, user_id=user_id)
    return await stack.answered(inter)


async def test_upscale_sends_that_image_alone_at_full_size(stack: Stack, scene: Scene) -> None:
    result = await stack.imagine(scene, "four squares --seed 100 --steps 2", count=4)
    job = job_of(result)
    inter = await stack.fake.click(result.id, f"imagine:u:{job}:2", user_id=scene.bob.id)
    inter = await stack.fake.wait_for_ack(inter)
    single = await stack.wait(
        lambda: (m := stack.fake.message(inter.original_message_id or 0)) and m.attachments and m, "the U2 image"
    )
    data = single.attachments[0].data
    assert (single.attachments[0].width, single.attachments[0].height) == (128, 128)
    params = png_parameters(data)
    assert params is not None and seed_of(params) == 101  # image 2 of seeds 100..103
    assert np.array_equal(pixels(data), pixels(crop_cell(result.attachments[0].data, 1, 4)))
    assert not single.mention_user_ids and not single.mention_everyone


async def test_reroll_gives_a_new_seed_for_the_presser(stack: Stack, scene: Scene) -> None:
    result = await stack.imagine(scene, "a blue star --seed 7 --steps 2")
    again = await press(stack, result, f"imagine:r:{job_of(result)}", scene.bob.id)
    first, second = png_parameters(result.attachments[0].data), png_parameters(again.attachments[0].data)
    assert first and second and seed_of(first) == 7 and seed_of(second) != 7
    assert second.split("\n")[0] == "a blue star" and "Steps: 2," in second
    assert f"<@{scene.bob.id}>" in again.content  # the re-roll is bob's job


async def test_variation_keeps_the_composition_and_reroll_does_not(stack: Stack, scene: Scene) -> None:
    result = await stack.imagine(scene, "noise --model plain --seed 3 --steps 4", count=4)
    job = job_of(result)
    source = pixels(crop_cell(result.attachments[0].data, 1, 4))
    varied = await press(stack, result, f"imagine:v:{job}:2", scene.alice.id)
    rerolled = await press(stack, result, f"imagine:r:{job}", scene.alice.id)
    params = png_parameters(varied.attachments[0].data)
    assert params is not None and f"Denoising strength: {STRENGTH:g}" in params and seed_of(params) != 3
    assert "variation of image 2" in varied.content
    kept = [correlation(source, pixels(crop_cell(varied.attachments[0].data, i, 4))) for i in range(4)]
    fresh = [correlation(source, pixels(crop_cell(rerolled.attachments[0].data, i, 4))) for i in range(4)]
    assert min(kept) > 0.4, kept
    assert max(abs(c) for c in fresh) < 0.2, fresh
    # New seeds: the four variations differ from each other.
    cells = [pixels(crop_cell(varied.attachments[0].data, i, 4)) for i in range(4)]
    assert all(not np.array_equal(a, b) for a, b in itertools.combinations(cells, 2))


async def test_remix_opens_a_form_and_runs_the_edit(stack: Stack, scene: Scene) -> None:
    result = await stack.imagine(scene, "a green circle --seed 11 --steps 2")
    inter = await stack.fake.click(result.id, f"imagine:e:{job_of(result)}", user_id=scene.alice.id)
    inter = await stack.fake.wait_for_ack(inter)
    assert inter.ack_type == 9 and inter.modal is not None
    rows = inter.modal["components"]
    inputs = {c["custom_id"]: c for row in rows for c in row.get("components", [row.get("component")])}
    prompt_id, negative_id, parameters_id = list(inputs)
    assert inputs[prompt_id]["value"] == "a green circle"
    assert "--seed 11" in inputs[parameters_id]["value"] and "--steps 2" in inputs[parameters_id]["value"]
    submitted = await stack.fake.submit_modal(
        inter, {prompt_id: "a green square", negative_id: "red", parameters_id: "--seed 12 --steps 3"}
    )
    remixed = await stack.answered(submitted)
    params = png_parameters(remixed.attachments[0].data)
    assert params is not None and params.startswith("a green square\nNegative prompt: red\n")
    assert seed_of(params) == 12 and "Steps: 3," in params


async def test_info_is_private_and_complete(stack: Stack, scene: Scene) -> None:
    result = await stack.imagine(scene, "a yellow heart --seed 21 --steps 2 --no blue", count=2)
    inter = await stack.fake.click(result.id, f"imagine:i:{job_of(result)}", user_id=scene.bob.id)
    inter = await stack.fake.wait_for_ack(inter)
    shown = await stack.wait(
        lambda: (m := stack.fake.message(inter.original_message_id or 0)) and m.content and m, "the info answer"
    )
    assert shown.ephemeral
    assert "21, 22" in shown.content and "a yellow heart" in shown.content and "blue" in shown.content
    assert "2 steps" in shown.content and "model tiny" in shown.content


async def test_delete_is_for_the_requester_or_a_moderator(stack: Stack, scene: Scene) -> None:
    fake = stack.fake
    first = await stack.imagine(scene, "delete me --steps 2")
    refused = await fake.click(first.id, f"imagine:d:{job_of(first)}", user_id=scene.bob.id)
    refused = await fake.wait_for_ack(refused)
    answer = fake.message(refused.original_message_id or 0)
    assert answer.ephemeral and "moderator" in answer.content
    assert not fake.message(first.id).deleted

    await fake.wait_for_ack(await fake.click(first.id, f"imagine:d:{job_of(first)}", user_id=scene.mod.id))
    await stack.wait(lambda: fake.message(first.id).deleted, "the moderator's delete")

    second = await stack.imagine(scene, "delete me too --steps 2")
    await fake.wait_for_ack(await fake.click(second.id, f"imagine:d:{job_of(second)}", user_id=scene.alice.id))
    await stack.wait(lambda: fake.message(second.id).deleted, "the requester's delete")
