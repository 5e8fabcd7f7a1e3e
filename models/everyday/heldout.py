"""The evaluator's prompts, fixed once: scenes training never shows, and words no caption uses.

- single: one object at a size, place and background; training skips every scene with the same object, place and
  background (any size), so the model is asked for combinations, never for a picture it saw;
- pairs: two objects; training skips the same pair at the same places on the same background;
- free words: synonyms, plurals and misspellings that appear in no caption of any object (a test checks it),
  each with the object it means: only a pretrained text encoder can bring these near the right picture.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from .captions import canonical
from .catalog import by_short_name, objects
from .world import Scene, random_scene

SINGLE_COUNT = 200
PAIR_COUNT = 50

FREE_WORDS: dict[str, str] = {
    "kitty": "cat",
    "kitten": "cat",
    "puppy": "dog",
    "doggy": "dog",
    "pooch": "dog",
    "stallion": "horse",
    "pony": "horse",
    "spaceship": "rocket",
    "starship": "rocket",
    "pizzas": "pizza",
    "piza": "pizza",
    "apples": "red apple",
    "bananas": "banana",
    "bannana": "banana",
    "strawberies": "strawberry",
    "elefant": "elephant",
    "giraf": "giraffe",
    "tortoise": "turtle",
    "alligator": "crocodile",
    "yacht": "sailboat",
    "plane": "airplane",
    "cellphone": "mobile phone",
    "smartphone": "mobile phone",
    "burger": "hamburger",
    "cupcakes": "cupcake",
    "toad": "frog",
    "ladybug": "lady beetle",
    "hare": "rabbit",
    "crimson heart": "red heart",
    "scarlet heart": "red heart",
}
"""Free phrase -> the short name of the object it means."""

PLURALS = frozenset({"pizzas", "apples", "bananas", "strawberies", "cupcakes"})


PROBE_OBJECTS = 200
"""Size of the subset the first probes train on."""

NAMED_IN_ISSUE = ("cat", "pizza", "rocket", "crescent moon", "red apple", "sun", "house", "tree")


@cache
def probe_subset(count: int = PROBE_OBJECTS, seed: int = 20) -> tuple[int, ...]:
    """Sorted object indices for bounded probes: every free word's object and the issue's examples, then a seeded
    sample of the rest, so the free-word prompts and the examples can be asked of a probe."""
    names = by_short_name()
    fixed = {names[n].index for n in (*FREE_WORDS.values(), *NAMED_IN_ISSUE) if n in names}
    rest = sorted(set(range(len(objects()))) - fixed)
    return tuple(sorted(fixed | set(random.Random(seed).sample(rest, count - len(fixed)))))


@dataclass(frozen=True)
class FreeWordPrompt:
    """A prompt in words no caption uses, and the scene it asks for."""

    prompt: str
    scene: Scene


@cache
def heldout_scenes(pool: tuple[int, ...] | None = None) -> tuple[tuple[Scene, ...], tuple[Scene, ...]]:
    """(single-object scenes, two-object scenes) over the objects in `pool` (all by default), distinct, seeded."""
    objs = pool if pool is not None else tuple(range(len(objects())))
    rng = random.Random(20261203)
    single: dict[tuple, Scene] = {}
    pairs: dict[tuple, Scene] = {}
    while len(single) < SINGLE_COUNT:
        scene = random_scene(rng, objs, two_share=0.0)
        single.setdefault(scene.key, scene)
    while len(pairs) < PAIR_COUNT:
        scene = random_scene(rng, objs, two_share=1.0)
        pairs.setdefault(scene.key, scene)
    return tuple(single.values()), tuple(pairs.values())


@cache
def heldout_keys(pool: tuple[int, ...] | None = None) -> frozenset[tuple]:
    single, pairs = heldout_scenes(pool)
    return frozenset(s.key for s in (*single, *pairs))


def is_heldout(scene: Scene, pool: tuple[int, ...] | None = None) -> bool:
    return scene.key in heldout_keys(pool)


def training_scene(rng: random.Random, pool: Sequence[int], heldout_pool: tuple[int, ...] | None = None) -> Scene:
    """`random_scene`, drawn again while it is a held-out scene."""
    while True:
        scene = random_scene(rng, pool)
        if not is_heldout(scene, heldout_pool):
            return scene


@cache
def free_word_prompts(pool: tuple[int, ...] | None = None) -> tuple[FreeWordPrompt, ...]:
    """One prompt per free phrase whose object is in `pool`: the canonical prompt of a seeded scene of that object,
    its name replaced by the free phrase."""
    rng = random.Random(11)
    prompts = []
    for phrase, short in FREE_WORDS.items():
        obj = by_short_name()[short].index
        scene = random_scene(rng, (obj,), two_share=0.0)
        if pool is None or obj in pool:
            text = canonical(scene).replace(f" {short} ", f" {phrase} ", 1)
            if phrase in PLURALS:
                text = text.split(" ", 1)[1]
            prompts.append(FreeWordPrompt(text, scene))
    return tuple(prompts)
