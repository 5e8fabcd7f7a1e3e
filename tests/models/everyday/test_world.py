"""The committed sheet, the world, its captions and the held-out split agree with each other."""

from __future__ import annotations

import random

import numpy as np

from models.everyday.captions import canonical, caption, vocabulary
from models.everyday.catalog import SPRITE, by_short_name, objects, sprite
from models.everyday.heldout import (
    FREE_WORDS,
    free_word_prompts,
    heldout_scenes,
    is_heldout,
    probe_subset,
    training_scene,
)
from models.everyday.world import BACKGROUNDS, SIZE, Placed, Scene, random_scene, render


def test_the_committed_sheet_names_every_picture_and_each_is_drawn() -> None:
    assert len(objects()) >= 1000
    assert len({o.short for o in objects()}) == len(objects())
    for obj in objects()[:: len(objects()) // 50]:
        alpha = np.asarray(sprite(obj.index).getchannel("A"))
        assert alpha.shape == (SPRITE, SPRITE) and (alpha > 128).mean() > 0.1, obj.short


def test_the_issues_examples_are_in_the_world() -> None:
    names = by_short_name()
    for short in ("cat", "pizza", "rocket", "crescent moon", "red apple"):
        assert short in names
    assert "apple" in names["red apple"].names


def test_a_render_shows_the_object_where_the_scene_says() -> None:
    apple = by_short_name()["red apple"].index
    left = np.asarray(render(Scene((Placed(apple, "big", "left"),), "white")), dtype=np.float32)
    assert left.shape == (SIZE, SIZE, 3)
    changed = np.linalg.norm(left - 245, axis=2) > 60
    xs = np.nonzero(changed)[1]
    assert xs.mean() < SIZE * 0.45 and changed.sum() > 100


def test_every_background_renders_and_two_objects_do_not_overlap() -> None:
    rng = random.Random(0)
    for background in BACKGROUNDS:
        scene = random_scene(rng, range(len(objects())), two_share=1.0)
        image = render(Scene(scene.items, background), rng)
        assert image.size == (SIZE, SIZE)


def test_captions_name_the_object_and_the_canonical_one_everything() -> None:
    rng = random.Random(1)
    rocket, moon = by_short_name()["rocket"].index, by_short_name()["crescent moon"].index
    pair = Scene((Placed(rocket, "small", "left"), Placed(moon, "small", "right")), "sky over grass")
    assert canonical(pair) == "a rocket left of a crescent moon under a blue sky over green grass"
    single = Scene((Placed(by_short_name()["red apple"].index, "small", "top left"),), "blue")
    assert canonical(single) == "a small red apple in the top left corner on a blue background"
    for _ in range(30):
        text = caption(pair, rng)
        assert ("rocket" in text) and ("moon" in text), text
        assert "  " not in text and " ," not in text


def test_free_words_appear_in_no_caption() -> None:
    words = vocabulary()
    for phrase, short in FREE_WORDS.items():
        assert short in by_short_name()
        assert not set(phrase.split()) <= words, phrase
    assert len(free_word_prompts(probe_subset())) == len(FREE_WORDS)


def test_training_never_draws_a_heldout_scene() -> None:
    pool = probe_subset()
    single, pairs = heldout_scenes(pool)
    assert len(single) == 200 and len(pairs) == 50
    assert all(p.obj in pool for s in (*single, *pairs) for p in s.items)
    rng = random.Random(2)
    assert not any(is_heldout(training_scene(rng, pool, pool), pool) for _ in range(3000))
