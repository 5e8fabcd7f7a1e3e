"""models/clips/captions.py: phrasings the tokenizer reads whole, and the image model's token ids kept."""

from __future__ import annotations

import random

from models.clips.architecture import make_tokenizer
from models.clips.captions import MOTION_WORDS, canonical, caption, described, vocabulary
from models.clips.world import ClipScene, random_clip_scene
from models.shapes.captions import vocabulary as image_vocabulary
from models.shapes.tokenizer import MAX_LENGTH


def test_the_canonical_caption() -> None:
    assert canonical(ClipScene("circle", "red", "right", "blue")) == "a red circle moving right on a blue background"
    assert canonical(ClipScene("star", "orange", "recolor", "gray")) == (
        "an orange star changing color on a gray background"
    )


def test_the_vocabulary_extends_the_image_models_in_order() -> None:
    image = image_vocabulary()
    words = vocabulary()
    assert words[: len(image)] == image and len(set(words)) == len(words)
    assert {"moving", "bouncing", "spinning", "growing", "shrinking", "changing"} <= set(words[len(image) :])


def test_every_caption_is_read_whole_and_fits() -> None:
    tokenizer = make_tokenizer()
    rng = random.Random(0)
    for _ in range(500):
        scene = random_clip_scene(rng)
        text = caption(scene, rng, drop=0.3)
        ids = tokenizer(text).input_ids
        assert tokenizer.unk_token_id not in ids
        assert len(ids) == len(text.replace(",", " ").split()) + 2 <= MAX_LENGTH, text
        assert scene.color in text or (scene.color == "purple" and "violet" in text) or scene.color == "gray"
        assert any(phrase in text for phrase in MOTION_WORDS[scene.motion]), text


def test_unknown_words_are_dropped() -> None:
    tokenizer = make_tokenizer()
    assert (
        tokenizer("please animate a red circle moving right").input_ids
        == tokenizer("a red circle moving right").input_ids
    )


def test_described_names_what_the_caption_says_and_leaves_out_a_dropped_background() -> None:
    scene = ClipScene("heart", "pink", "bounce", "gray")
    for seed in range(40):
        text, named = described(scene, random.Random(seed), drop=0.5)
        assert text == caption(scene, random.Random(seed), drop=0.5)  # the same phrasing from the same stream
        assert named["motion"] == "bounce" and named["color"] == "pink" and named["shape"] == "heart"
        assert (named["background"] == "gray") == ("gray" in text or "grey" in text), text
