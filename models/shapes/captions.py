"""Captions for the shapes world: several phrasings per scene, so members can type the way they talk.

Training draws a fresh phrasing for every sample; the tokenizer's vocabulary is every word these templates can
produce, so a word outside it is simply dropped ("please draw a red star" reads as "a red star").
"""

from __future__ import annotations

import random

from .world import BACKGROUNDS, POSITIONS, Scene

SIZE_WORDS: dict[str, tuple[str, ...]] = {"small": ("small", "little", "tiny"), "big": ("big", "large")}
COLOR_WORDS: dict[str, tuple[str, ...]] = {name: (name,) for name in BACKGROUNDS}
COLOR_WORDS["gray"] = ("gray", "grey")
COLOR_WORDS["purple"] = ("purple", "violet")

POSITION_WORDS: dict[str, tuple[str, ...]] = {
    "center": ("in the center", "in the middle", "at the center", "centered", "center", "middle"),
    "left": ("on the left", "at the left", "to the left", "left", "on the left side"),
    "right": ("on the right", "at the right", "to the right", "right", "on the right side"),
    "top": ("at the top", "on top", "top", "at the top edge"),
    "bottom": ("at the bottom", "bottom", "on the bottom", "at the bottom edge"),
}
for _vertical, _upper in (("top", "upper"), ("bottom", "lower")):
    for _side in ("left", "right"):
        POSITION_WORDS[f"{_vertical} {_side}"] = (
            f"in the {_vertical} {_side} corner",
            f"at the {_vertical} {_side}",
            f"{_vertical} {_side}",
            f"in the {_upper} {_side}",
            f"{_upper} {_side} corner",
        )
assert set(POSITION_WORDS) == set(POSITIONS)

BACKGROUND_FORMS: tuple[str, ...] = ("on a {bg} background", ", {bg} background", "on {bg}", "with a {bg} background")


def caption(scene: Scene, rng: random.Random, drop: float = 0.0) -> str:
    """One phrasing of the scene; each of size, position and background is left out with probability drop."""
    return described(scene, rng, drop)[0]


def described(scene: Scene, rng: random.Random, drop: float = 0.0) -> tuple[str, dict[str, str | None]]:
    """`caption`, and the attributes it names (None for one it leaves out): the trainer's labels for the text."""
    size = "" if rng.random() < drop else rng.choice(SIZE_WORDS[scene.size]) + " "
    article = "a " if rng.random() < 0.6 else ""
    subject = f"{article}{size}{rng.choice(COLOR_WORDS[scene.color])} {scene.shape}"
    pos = "" if rng.random() < drop else rng.choice(POSITION_WORDS[scene.position])
    bg_name = rng.choice(COLOR_WORDS[scene.background])
    background = "" if rng.random() < drop else rng.choice(BACKGROUND_FORMS).format(bg=bg_name)
    form = rng.randrange(3)
    if form == 0:
        parts = [subject, pos, background]
    elif form == 1:
        parts = [subject, background, (", " + pos) if pos else ""]
    else:
        parts = [f"{bg_name} background with", subject, pos] if background else [subject, pos]
    text = " ".join(p for p in parts if p)
    named = {
        "color": scene.color,
        "shape": scene.shape,
        "size": scene.size if size else None,
        "position": scene.position if pos else None,
        "background": scene.background if background else None,
    }
    return _articles(" ".join(text.replace(" ,", ",").replace(",,", ",").split())), named


def _articles(text: str) -> str:
    """English wants "an orange", not "a orange"."""
    words = text.split(" ")
    for i, word in enumerate(words[:-1]):
        if word == "a" and words[i + 1][0] in "aeiou":
            words[i] = "an"
    return " ".join(words)


def canonical(scene: Scene) -> str:
    """The plain, complete phrasing used by the evaluator and the model card."""
    return _articles(
        f"a {scene.size} {scene.color} {scene.shape} {POSITION_WORDS[scene.position][0]}"
        f" on a {scene.background} background"
    )


def vocabulary() -> list[str]:
    """Every word a caption can contain, in a stable order."""
    words: set[str] = {"a", "an", "background", "with"}
    for form in BACKGROUND_FORMS:
        words.update(w for w in form.replace(",", " ").split() if "{" not in w)
    for table in (SIZE_WORDS, COLOR_WORDS, POSITION_WORDS):
        for phrases in table.values():
            for phrase in phrases:
                words.update(phrase.split())
    words.update(("circle", "square", "triangle", "star", "heart"))
    return sorted(words)
