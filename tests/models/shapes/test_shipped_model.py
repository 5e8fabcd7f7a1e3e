"""The committed weights draw what they are asked: a few prompts, fixed seeds, read back by the analyzer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from diffusers import DiffusionPipeline

from imagine.contract import SAMPLERS, JobSpec, SpecError
from models import loader, registry
from models.shapes.analyzer import analyze
from models.shapes.captions import canonical
from models.shapes.evaluate import DEFAULT_FOLDER
from models.shapes.world import Scene

SCENES = (
    Scene("star", "red", "big", "top left", "black"),
    Scene("circle", "blue", "big", "center", "yellow"),
    Scene("square", "green", "small", "bottom right", "white"),
    Scene("triangle", "orange", "big", "left", "purple"),
    Scene("heart", "pink", "big", "top", "gray"),
    Scene("circle", "yellow", "small", "right", "blue"),
    Scene("square", "white", "big", "bottom", "red"),
    Scene("star", "black", "big", "center", "orange"),
)
PROMPTS = [canonical(s) for s in SCENES] + [
    "please draw a red star in the top left corner on a black background",
]
EXPECTED = [*SCENES, SCENES[0]]

# Issue 3's targets, checked on these prompts at the registry's defaults. At step 5,484 the committed weights get
# every attribute of all 9 right here, and on the evaluator's 100 held-out prompts colour 100%, shape 96%,
# position 99%, size 100%, background 100% (the model card has the table, unseen colour-shape pairs included).
FLOORS = {"color": 0.9, "shape": 0.8, "position": 0.9, "size": 0.9, "background": 0.9}


def test_the_shipped_model_follows_prompts_at_its_defaults() -> None:
    pipe = DiffusionPipeline.from_pretrained(DEFAULT_FOLDER)
    pipe.set_progress_bar_config(disable=True)
    generators = [torch.Generator().manual_seed(i) for i in range(len(PROMPTS))]
    images = pipe(PROMPTS, num_inference_steps=20, guidance_scale=4.0, generator=generators).images
    readings = [analyze(image).matches(scene) for image, scene in zip(images, EXPECTED, strict=True)]
    for attribute, floor in FLOORS.items():
        share = sum(r[attribute] for r in readings) / len(readings)
        assert share >= floor, f"{attribute}: {share:.0%} of {len(readings)} prompts right (floor {floor:.0%})"


@pytest.fixture(scope="module")
def shipped() -> Iterator[tuple[registry.ModelEntry, Any, Any]]:
    """The shipped model loaded the way the worker loads it (registry entry, `models.loader`), and its own sampler
    config, which the worker keeps to build every job's sampler from."""
    entry = registry.load().get("shapes")
    pipe = loader.load_pipeline(entry, data_dir=Path("."), device=torch.device("cpu"), dtype=torch.float32)
    yield entry, pipe, pipe.scheduler.config


@pytest.mark.parametrize("steps", [4, 5])
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_a_member_can_pick_runs_on_the_shipped_model_or_is_refused(
    shipped: tuple[registry.ModelEntry, Any, Any], sampler: str, steps: int
) -> None:
    """/imagine offers every contract sampler; each must draw on the default model or be refused before it runs.

    Few steps, but the ones that broke on this model's cosine schedule: Euler ancestral drew NaN at 4, and
    DPM++ 2M Karras overran its sigmas from 5 up (`tests/models/test_samplers.py` tries every count, model-free).
    """
    entry, pipe, config = shipped
    spec = JobSpec(prompt="a red star", sampler=sampler, steps=steps, seed=1).resolved(entry.name, entry.defaults)
    family = entry.family_info
    assert family is not None
    if sampler not in family.samplers:
        with pytest.raises(SpecError, match="sampler"):
            entry.check_spec(spec)
        return
    entry.check_spec(spec)
    pipe.scheduler = loader.make_scheduler(sampler, config, family)
    generator = torch.Generator().manual_seed(1)
    out = pipe(spec.prompt, num_inference_steps=steps, guidance_scale=4.0, generator=generator, output_type="np")
    assert out.images.shape == (1, 32, 32, 3)
    assert torch.isfinite(torch.from_numpy(out.images)).all()
