"""models/lora.py through the worker: a LoRA made in the test changes the output, only listed ones may be chosen,
a fused one is always on, and a job without a LoRA after one with it gets the plain model back."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from PIL import Image

from imagine import keys, queue
from imagine.contract import JobSpec
from tests.helpers import run_burst
from worker.encoding import read_parameters


def run(conn: Any, settings: Any, ctx: Any, **fields: Any) -> Any:
    job = queue.enqueue(conn, JobSpec(**{"prompt": "a green triangle", "seed": 9, "model": "sd15", **fields}), settings)
    run_burst(ctx)
    return queue.wait(conn, job.id, timeout=30), job.id


def pixels(result: Any) -> np.ndarray:
    with Image.open(io.BytesIO(result.images[0].png_bytes())) as picture:
        return np.asarray(picture.convert("RGB"), dtype=np.int16)


def test_a_lora_changes_the_output_and_goes_away_when_not_asked_for(conn, family_settings, family_ctx) -> None:
    plain, _ = run(conn, family_settings, family_ctx)
    with_lora, _ = run(conn, family_settings, family_ctx, loras=("pixel",))
    plain_again, _ = run(conn, family_settings, family_ctx)
    assert np.abs(pixels(with_lora) - pixels(plain)).mean() > 2  # the LoRA moved the picture
    assert plain_again.images[0].png == plain.images[0].png  # and it is off again for the next job
    assert with_lora.spec.loras == ("pixel",)
    assert "LoRAs: pixel" in (read_parameters(with_lora.images[0].png_bytes()) or "")


def test_a_fused_lora_is_always_on_and_cannot_be_chosen(conn, family_settings, family_ctx) -> None:
    plain, _ = run(conn, family_settings, family_ctx)
    with_lora, _ = run(conn, family_settings, family_ctx, loras=("pixel",))
    fused, _ = run(conn, family_settings, family_ctx, model="sd15-fused")
    # Same weights, merged: equal but for rounding (more of it under bf16 autocast, on CPUs that have it), and far
    # from the plain model.
    rounding = np.abs(pixels(fused) - pixels(with_lora)).mean()
    assert rounding < 2 and rounding * 4 < np.abs(pixels(fused) - pixels(plain)).mean()
    with pytest.raises(queue.JobFailed, match="has no LoRA 'pixel' to choose"):
        run(conn, family_settings, family_ctx, model="sd15-fused", loras=("pixel",))


def test_only_listed_loras_may_be_chosen(conn, family_settings, family_ctx) -> None:
    with pytest.raises(queue.JobFailed, match=r"has no LoRA 'other' to choose \(listed: pixel\)") as failure:
        run(conn, family_settings, family_ctx, loras=("other",))
    assert conn.hget(keys.job(failure.value.job_id), "attempts") == b"1"  # refused, not retried
    with pytest.raises(queue.JobFailed, match="listed: none"):
        run(conn, family_settings, family_ctx, model="sd2", loras=("pixel",))


def test_the_advertised_models_list_only_choosable_loras(family_ctx) -> None:
    infos = {info.name: info for info in family_ctx.registry.infos(family_ctx.settings.data_dir)}
    assert infos["sd15"].loras == ["pixel"] and infos["sd15-fused"].loras == []
    assert infos["wan"].kind == "clip" and infos["sdxl"].kind == "image" and infos["flux"].family == "flux"
