"""Captions for clips: "a red circle moving right on a blue background", in several phrasings.

The vocabulary is the image model's (same words, same token ids, so its text encoder is a head start) with the
motion words appended; the tokenizer drops every other word, as the image model's does.
"""

from __future__ import annotations

import random

from models.shapes.captions import BACKGROUND_FORMS, COLOR_WORDS, _articles
from models.shapes.captions import vocabulary as image_vocabulary

from .world import MOTIONS, ClipScene

MOTION_WORDS: dict[str, tuple[str, ...]] = {
    "left": ("moving left", "moving to the left", "going left", "sliding left"),
    "right": ("moving right", "moving to the right", "going right", "sliding right"),
    "up": ("moving up", "going up", "rising", "moving upward"),
    "down": ("moving down", "going down", "falling", "moving downward"),
    "grow": ("growing", "getting bigger", "expanding"),
    "shrink": ("shrinking", "getting smaller"),
    "spin": ("spinning", "rotating", "turning around"),
    "bounce": ("bouncing", "bouncing up and down", "hopping"),
    "recolor": ("changing color", "changing colour", "changing colors"),
}
assert set(MOTION_WORDS) == set(MOTIONS)


def caption(scene: ClipScene, rng: random.Random, drop: float = 0.0) -> str:
    """One phrasing of the scene; the background is left out with probability `drop` (the motion never is)."""
    return described(scene, rng, drop)[0]


def described(scene: ClipScene, rng: random.Random, drop: float = 0.0) -> tuple[str, dict[str, str | None]]:
    """`caption`, and the attributes it names (None for one it leaves out): the trainer's labels for the text."""
    article = "a " if rng.random() < 0.6 else ""
    subject = f"{article}{rng.choice(COLOR_WORDS[scene.color])} {scene.shape}"
    motion = rng.choice(MOTION_WORDS[scene.motion])
    bg_name = rng.choice(COLOR_WORDS[scene.background])
    named: dict[str, str | None] = {**scene.as_dict()}
    if rng.random() < drop:
        text = f"{subject} {motion}"
        named["background"] = None
    else:
        form = rng.randrange(3)
        if form == 0:
            text = f"{subject} {motion} {rng.choice(BACKGROUND_FORMS).format(bg=bg_name)}"
        elif form == 1:
            text = f"{bg_name} background with {subject} {motion}"
        else:
            text = f"{subject} {rng.choice(BACKGROUND_FORMS).format(bg=bg_name)}, {motion}"
    return _articles(" ".join(text.replace(" ,", ",").replace(",,", ",").split())), named


def canonical(scene: ClipScene) -> str:
    """The plain, complete phrasing used by the evaluator and the model card."""
    return _articles(
        f"a {scene.color} {scene.shape} {MOTION_WORDS[scene.motion][0]} on a {scene.background} background"
    )


def vocabulary() -> list[str]:
    """The image model's words in its order, then the motion words it lacks (sorted): token ids stay the same."""
    words = image_vocabulary()
    known = set(words)
    extra = {w for phrases in MOTION_WORDS.values() for phrase in phrases for w in phrase.split()} - known
    return words + sorted(extra)
