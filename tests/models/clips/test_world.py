"""models/clips/world.py: every motion does what its name says, over any number of frames."""

from __future__ import annotations

import random

import numpy as np
import pytest

from models.clips.world import FRAMES, MOTIONS, NEAR, ClipScene, poses, random_clip_scene, render_clip
from models.shapes.world import BACKGROUNDS, COLORS


@pytest.mark.parametrize("frames", [FRAMES, 16])
def test_each_motion_goes_where_its_name_says(frames: int) -> None:
    def path(motion: str) -> list:
        return poses(ClipScene("square", "red", motion, "blue"), frames)

    left, right, up, down = (path(m) for m in ("left", "right", "up", "down"))
    assert left[0].cx > 0.5 > left[-1].cx == pytest.approx(NEAR) and right[0].cx < right[-1].cx
    assert up[0].cy > up[-1].cy and down[0].cy < down[-1].cy
    assert all(p.cy == 0.5 for p in left + right) and all(p.cx == 0.5 for p in up + down)
    grow, shrink = path("grow"), path("shrink")
    assert grow[0].radius < grow[-1].radius and shrink[0].radius > shrink[-1].radius
    spin = path("spin")
    assert spin[0].angle == 0 and spin[-1].angle > 90 and len({(p.cx, p.cy, p.radius) for p in spin}) == 1
    bounce = path("bounce")
    assert bounce[0].cy == pytest.approx(bounce[-1].cy) and min(p.cy for p in bounce) < bounce[0].cy - 0.3
    recolor = poses(ClipScene("square", "red", "recolor", "blue"), frames, random.Random(1))
    assert recolor[0].rgb == COLORS["red"] and recolor[-1].rgb in COLORS.values() and recolor[-1].rgb != COLORS["red"]
    assert len(left) == frames


def test_frames_are_pictures_of_the_world() -> None:
    rng = random.Random(3)
    for _ in range(20):
        scene = random_clip_scene(rng)
        assert scene.motion in MOTIONS and scene.color != scene.background
        clip = render_clip(scene, 8, rng)
        assert len(clip) == 8 and all(f.size == (32, 32) and f.mode == "RGB" for f in clip)
        corner = np.asarray(clip[0])[0, 0]
        assert tuple(int(c) for c in corner) == BACKGROUNDS[scene.background]
    assert render_clip(ClipScene("star", "red", "left", "blue"), 4, size=64)[0].size == (64, 64)


def test_a_clip_needs_two_frames() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        poses(ClipScene("star", "red", "left", "blue"), 1)
