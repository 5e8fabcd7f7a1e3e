"""The world, its captions and the analyzer agree: real renders are read back exactly."""

from __future__ import annotations

import random

from models.shapes.analyzer import analyze
from models.shapes.captions import canonical, caption
from models.shapes.heldout import heldout_scenes, is_heldout
from models.shapes.world import SHAPES, UNSEEN_PAIRS, Scene, random_scene, render


def test_analyzer_reads_every_attribute_of_real_renders() -> None:
    rng = random.Random(3)
    for _ in range(400):
        scene = random_scene(rng, allow_unseen=True)
        reading = analyze(render(scene, rng))
        assert reading.matches(scene) == dict.fromkeys(reading.matches(scene), True), (scene, reading)


def test_analyzer_reads_upscaled_pictures_too() -> None:
    scene = Scene("star", "red", "big", "top left", "black")
    assert all(analyze(render(scene).resize((128, 128))).matches(scene).values())


def test_analyzer_sees_no_shape_on_a_blank_picture() -> None:
    reading = analyze(render(Scene("circle", "red", "small", "center", "red")))
    assert reading.shape is None and reading.background == "red"


def test_training_scenes_never_pair_the_unseen_colours_and_shapes() -> None:
    rng = random.Random(0)
    pairs = {(s.color, s.shape) for s in (random_scene(rng) for _ in range(3000))}
    assert not pairs & UNSEEN_PAIRS
    assert len(pairs) == 9 * len(SHAPES) - len(UNSEEN_PAIRS)


def test_heldout_set_is_fixed_distinct_and_covers_the_unseen_pairs() -> None:
    seen, unseen = heldout_scenes()
    assert len(set(seen)) == len(seen) == 100
    assert {(s.color, s.shape) for s in unseen} == set(UNSEEN_PAIRS)
    assert all(is_heldout(s) for s in seen + unseen)
    assert all(s.color != s.background for s in seen + unseen)


def test_captions_name_every_attribute_unless_dropped() -> None:
    rng = random.Random(1)
    scene = Scene("heart", "orange", "small", "bottom right", "gray")
    for _ in range(50):
        text = caption(scene, rng)
        assert "orange heart" in text and ("gray" in text or "grey" in text)
        assert any(word in text for word in ("small", "little", "tiny"))
    assert canonical(scene) == "a small orange heart in the bottom right corner on a gray background"
