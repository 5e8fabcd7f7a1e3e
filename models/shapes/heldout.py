"""The evaluator's prompts, fixed once: training never shows these exact scenes."""

from __future__ import annotations

import random
from functools import cache

from .world import UNSEEN_PAIRS, Scene, random_scene

SEEN_COUNT = 100
PER_UNSEEN_PAIR = 5


@cache
def heldout_scenes() -> tuple[tuple[Scene, ...], tuple[Scene, ...]]:
    """(scenes of colour-shape pairs seen in training, scenes of the pairs never seen), distinct, seeded."""
    rng = random.Random(20261125)
    seen: dict[Scene, None] = {}
    while len(seen) < SEEN_COUNT:
        seen.setdefault(random_scene(rng))
    unseen: dict[Scene, None] = {}
    for color, shape in sorted(UNSEEN_PAIRS):
        while sum(1 for s in unseen if (s.color, s.shape) == (color, shape)) < PER_UNSEEN_PAIR:
            scene = random_scene(rng, allow_unseen=True)
            background = scene.background if scene.background != color else "gray"
            unseen.setdefault(Scene(shape, color, scene.size, scene.position, background))
    return tuple(seen), tuple(unseen)


def is_heldout(scene: Scene) -> bool:
    seen, unseen = heldout_scenes()
    return scene in seen or scene in unseen
