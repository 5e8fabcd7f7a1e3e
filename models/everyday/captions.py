"""Captions for the everyday world: many phrasings from each object's names, so free text lands near them.

An object is called by its CLDR short name ("red apple"), one of the emoji package's aliases ("apple") or its
Unicode name; size, position and plain-colour words are the shapes captions' own (`models.shapes.captions`). Two
objects are joined by "and" (the first named is the left or upper one) or by a relation ("a rocket left of the
moon", "the moon right of a rocket", "a cat above a pizza").
"""

from __future__ import annotations

import random
import re

from models.shapes.captions import BACKGROUND_FORMS, COLOR_WORDS, POSITION_WORDS, SIZE_WORDS

from .catalog import EverydayObject, objects
from .world import PAIR_LAYOUTS, PLAIN, SCENERY, Placed, Scene

SCENERY_WORDS: dict[str, tuple[str, ...]] = {
    "sky over grass": ("under a blue sky over green grass", "on grass under a blue sky", "sky over grass background"),
    "sunset": ("at sunset", "on a sunset background", "with a sunset sky", "sunset background"),
    "blue gradient": ("on a blue gradient", "on a blue gradient background", "with a blue gradient"),
}
assert set(SCENERY_WORDS) == set(SCENERY)

RELATIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "horizontal": (("left of", "to the left of", "beside"), ("right of", "to the right of")),
    "vertical": (("above", "over", "on top of"), ("below", "under", "beneath")),
}
"""Per layout: (words for first-then-second, words for second-then-first)."""

NAME_WEIGHTS = (0.55, 0.3, 0.15)
"""Chance of calling an object by its short name, an alias, its Unicode name (when they differ)."""


def object_name(obj: EverydayObject, rng: random.Random) -> str:
    r = rng.random()
    if r < NAME_WEIGHTS[0] or (not obj.aliases and obj.unicode in ("", obj.short)):
        return obj.short
    if obj.aliases and (r < NAME_WEIGHTS[0] + NAME_WEIGHTS[1] or obj.unicode in ("", obj.short)):
        return rng.choice(obj.aliases)
    return obj.unicode or obj.short


def _background(name: str, rng: random.Random) -> str:
    if name in SCENERY:
        return rng.choice(SCENERY_WORDS[name])
    return rng.choice(BACKGROUND_FORMS).format(bg=rng.choice(COLOR_WORDS[name]))


def _subject(item: Placed, rng: random.Random, with_size: bool) -> str:
    article = rng.choice(("a ", "a ", "the ", ""))
    size = rng.choice(SIZE_WORDS[item.size]) + " " if with_size else ""
    return f"{article}{size}{object_name(objects()[item.obj], rng)}"


def caption(scene: Scene, rng: random.Random, drop: float = 0.3) -> str:
    """One phrasing; a single object's size, position and the background are each left out with chance `drop`."""
    background = "" if rng.random() < drop else _background(scene.background, rng)
    if len(scene.items) == 2:
        return _tidy(_pair(scene, rng, background))
    (item,) = scene.items
    subject = _subject(item, rng, with_size=rng.random() >= drop)
    position = "" if rng.random() < drop else rng.choice(POSITION_WORDS[item.position])
    if background and rng.random() < 0.2 and scene.background in PLAIN:
        text = f"{rng.choice(COLOR_WORDS[scene.background])} background with {subject} {position}"
    else:
        text = f"{subject} {position} {background}"
    return _tidy(text)


def _pair(scene: Scene, rng: random.Random, background: str) -> str:
    first, second = scene.items
    layout = PAIR_LAYOUTS[(first.position, second.position)]
    a, b = _subject(first, rng, False), _subject(second, rng, False)
    form = rng.randrange(4)
    if form == 0:
        text = f"{a} and {b}"
    elif form == 1:
        text = f"{a} {rng.choice(RELATIONS[layout][0])} {b}"
    elif form == 2:
        text = f"{b} {rng.choice(RELATIONS[layout][1])} {a}"
    else:
        text = f"{a} {POSITION_WORDS[first.position][0]} and {b} {POSITION_WORDS[second.position][0]}"
    return f"{text} {background}"


def canonical(scene: Scene) -> str:
    """The plain, complete phrasing the evaluator asks for: short names, size, place, background."""
    background = (
        f"on a {scene.background} background" if scene.background in PLAIN else SCENERY_WORDS[scene.background][0]
    )
    if len(scene.items) == 2:
        first, second = scene.items
        layout = PAIR_LAYOUTS[(first.position, second.position)]
        a, b = (objects()[p.obj].short for p in scene.items)
        return _tidy(f"a {a} {RELATIONS[layout][0][0]} a {b} {background}")
    (item,) = scene.items
    return _tidy(f"a {item.size} {objects()[item.obj].short} {POSITION_WORDS[item.position][0]} {background}")


def _tidy(text: str) -> str:
    """One space between words, no space before a comma, "an" before a vowel."""
    words = " ".join(text.split()).replace(" ,", ",").lstrip(", ").split(" ")
    for i, word in enumerate(words[:-1]):
        if word == "a" and words[i + 1][:1] in tuple("aeiou"):
            words[i] = "an"
    return " ".join(words)


def vocabulary() -> set[str]:
    """Every word any caption of any object can contain (lowercase, letters only)."""
    texts: list[str] = [*BACKGROUND_FORMS, "background with and a an the"]
    for table in (SIZE_WORDS, COLOR_WORDS, POSITION_WORDS, SCENERY_WORDS):
        texts.extend(phrase for phrases in table.values() for phrase in phrases)
    texts.extend(w for words in RELATIONS.values() for side in words for w in side)
    texts.extend(name for obj in objects() for name in obj.names)
    return {w for text in texts for w in re.findall(r"[a-z]+", text.lower()) if w != "bg"}
