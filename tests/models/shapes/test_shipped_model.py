"""The committed weights draw what they are asked: a few prompts, fixed seeds, read back by the analyzer."""

from __future__ import annotations

import torch
from diffusers import DiffusionPipeline

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

# Regression floors under what the committed weights reach on these prompts at the registry's defaults (colour,
# background and size 9/9, shape 5/9 at step 3,407); the model card has the full table. Position is not learned
# yet (2/9, chance is 1/9), so it has no floor: raise these to issue 3's targets as training resumes.
FLOORS = {"color": 0.85, "background": 0.85, "size": 0.75, "shape": 0.4}


def test_the_shipped_model_follows_prompts_at_its_defaults() -> None:
    pipe = DiffusionPipeline.from_pretrained(DEFAULT_FOLDER)
    pipe.set_progress_bar_config(disable=True)
    generators = [torch.Generator().manual_seed(i) for i in range(len(PROMPTS))]
    images = pipe(PROMPTS, num_inference_steps=20, guidance_scale=4.0, generator=generators).images
    readings = [analyze(image).matches(scene) for image, scene in zip(images, EXPECTED, strict=True)]
    for attribute, floor in FLOORS.items():
        share = sum(r[attribute] for r in readings) / len(readings)
        assert share >= floor, f"{attribute}: {share:.0%} of {len(readings)} prompts right (floor {floor:.0%})"
