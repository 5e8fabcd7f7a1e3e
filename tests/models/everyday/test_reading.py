"""The model-free reader reads the world's own renders back: background, place and size."""

from __future__ import annotations

import random

from models.everyday.catalog import objects
from models.everyday.reading import read_layout
from models.everyday.world import BACKGROUNDS, Placed, Scene, random_scene, render


def test_real_renders_read_back_nearly_always() -> None:
    rng = random.Random(3)
    total = backgrounds = places = sizes = 0
    for _ in range(300):
        scene = random_scene(rng, range(len(objects())), two_share=0.3)
        background, seen = read_layout(render(scene, rng), scene)
        backgrounds += background == scene.background
        for item, placement in zip(scene.items, seen, strict=True):
            total += 1
            places += placement.position == item.position
            sizes += placement.size == item.size
    # the misses are objects of the background's own colour (an orange square on orange)
    assert backgrounds == 300 and places >= 0.98 * total and sizes >= 0.98 * total


def test_every_background_is_told_apart_even_behind_a_big_object() -> None:
    for background in BACKGROUNDS:
        scene = Scene((Placed(0, "big", "center"),), background)
        assert read_layout(render(scene), scene)[0] == background


def test_a_blank_picture_shows_no_object() -> None:
    scene = Scene((Placed(0, "small", "left"),), "sky over grass")
    _, (placement,) = read_layout(render(Scene((), "sky over grass")), scene)
    assert placement.position is None
