"""The evaluator's clips, fixed once: training never shows these exact scenes (shape, colour, motion, background)."""

from __future__ import annotations

import random
from functools import cache

from .world import MOTIONS, ClipScene, random_clip_scene

PER_MOTION = 8


@cache
def heldout_scenes() -> tuple[ClipScene, ...]:
    """PER_MOTION distinct scenes for every motion, seeded; no spinning circle (its spin cannot be seen)."""
    rng = random.Random(20261126)
    chosen: dict[ClipScene, None] = {}
    for motion in MOTIONS:
        while sum(1 for s in chosen if s.motion == motion) < PER_MOTION:
            scene = random_clip_scene(rng)
            scene = ClipScene(scene.shape, scene.color, motion, scene.background)
            if motion == "spin" and scene.shape == "circle":
                continue
            chosen.setdefault(scene)
    return tuple(chosen)


def is_heldout(scene: ClipScene) -> bool:
    return scene in _heldout_set()


@cache
def _heldout_set() -> frozenset[ClipScene]:
    return frozenset(heldout_scenes())
