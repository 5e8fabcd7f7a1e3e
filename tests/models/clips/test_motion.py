"""models/clips/motion.py reads real renders of the clip world right, every attribute, every motion."""

from __future__ import annotations

import random

import pytest
from PIL import Image

from models.clips.evaluate import score
from models.clips.heldout import heldout_scenes, is_heldout
from models.clips.motion import read_clip
from models.clips.world import MOTIONS, ClipScene, random_clip_scene, render_clip


@pytest.mark.parametrize("frames", [8, 16])
def test_renders_are_read_right(frames: int) -> None:
    rng = random.Random(frames)
    seen = set()
    for _ in range(180):
        scene = random_clip_scene(rng)
        if scene.motion == "spin" and scene.shape == "circle":
            continue  # a turning circle looks still
        reading = read_clip(render_clip(scene, frames, rng))
        assert reading.matches(scene) == dict.fromkeys(("color", "shape", "background", "motion"), True), scene
        seen.add(scene.motion)
    assert seen == set(MOTIONS)


def test_held_out_renders_score_100_percent() -> None:
    scenes = heldout_scenes()
    assert len(scenes) == 72 and len(set(scenes)) == 72 and all(is_heldout(s) for s in scenes)
    assert {s.motion for s in scenes} == set(MOTIONS)
    result = score(scenes, [render_clip(s, 8, random.Random(i)) for i, s in enumerate(scenes)])
    assert {
        k: result[k] for k in ("color", "shape", "background", "motion", "direction", "frame_color")
    } == dict.fromkeys(("color", "shape", "background", "motion", "direction", "frame_color"), 100.0)


def test_a_still_or_empty_clip() -> None:
    still = render_clip(ClipScene("circle", "red", "spin", "blue"), 8)
    assert read_clip(still).motion == "still"
    blank = [Image.new("RGB", (32, 32), (35, 75, 225))] * 8
    reading = read_clip(blank)
    assert reading.motion is None and reading.color is None and reading.background == "blue"
