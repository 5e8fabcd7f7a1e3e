"""The everyday world: one or two pictures of everyday things on plain or simple backgrounds.

Sizes, positions, jitter and the plain background colours are the shapes world's (`models.shapes.world`), so the
two models agree on what "big", "top left" and "on a blue background" mean. The world adds three simple sceneries
(a two-tone sky over grass and two gradients) and scenes with two objects, always small so they do not overlap,
side by side or one above the other.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from PIL import Image

from models.shapes.world import BACKGROUNDS as PLAIN
from models.shapes.world import JITTER, POSITIONS, SIZE, SIZES

from .catalog import sprite_at

SUPERSAMPLE = 2
"""Scenes are drawn at twice the size, then box-filtered down; sprites are downscaled from 48 px at either size."""

SCENERY: dict[str, tuple[str, tuple[int, int, int], tuple[int, int, int]]] = {
    "sky over grass": ("split", (120, 185, 240), (70, 160, 60)),
    "sunset": ("gradient", (250, 160, 60), (150, 60, 140)),
    "blue gradient": ("gradient", (190, 225, 250), (35, 75, 225)),
}
"""Backgrounds beyond a plain colour: (kind, top colour, bottom colour)."""

BACKGROUNDS: tuple[str, ...] = (*PLAIN, *SCENERY)

HORIZON = 0.6
"""Where the sky meets the grass, as a fraction of the height."""

PAIR_LAYOUTS: dict[tuple[str, str], str] = {
    ("left", "right"): "horizontal",
    ("top left", "top right"): "horizontal",
    ("bottom left", "bottom right"): "horizontal",
    ("top", "bottom"): "vertical",
    ("top left", "bottom left"): "vertical",
    ("top right", "bottom right"): "vertical",
}
"""Where two objects go: the first is always left of (or above) the second."""

PAIR_SIZE = "small"
TWO_OBJECT_SHARE = 0.2


@dataclass(frozen=True)
class Placed:
    """One object of a scene: its index in the catalog, its size and its named position."""

    obj: int
    size: str
    position: str


@dataclass(frozen=True)
class Scene:
    """What a caption names and the evaluator reads back: one or two placed objects on a background."""

    items: tuple[Placed, ...]
    background: str

    @property
    def key(self) -> tuple:
        """The scene without its sizes: what the held-out split keeps training from seeing."""
        return (tuple((p.obj, p.position) for p in self.items), self.background)


def random_scene(rng: random.Random, pool: Sequence[int], two_share: float = TWO_OBJECT_SHARE) -> Scene:
    """A uniform draw from the objects in `pool`: one object at any size and place, or two small ones."""
    background = rng.choice(BACKGROUNDS)
    if rng.random() < two_share:
        first, second = rng.choice(list(PAIR_LAYOUTS))
        a, b = rng.sample(list(pool), 2)
        return Scene((Placed(a, PAIR_SIZE, first), Placed(b, PAIR_SIZE, second)), background)
    return Scene((Placed(rng.choice(pool), rng.choice(list(SIZES)), rng.choice(list(POSITIONS))),), background)


@cache
def background_image(name: str, side: int = SIZE * SUPERSAMPLE) -> Image.Image:
    """The background alone at side x side, RGBA (cached: copy before drawing on it)."""
    if name in PLAIN:
        return Image.new("RGBA", (side, side), (*PLAIN[name], 255))
    kind, top, bottom = SCENERY[name]
    image = Image.new("RGBA", (side, side))
    for y in range(side):
        if kind == "split":
            rgb = top if y < HORIZON * side else bottom
        else:
            t = y / (side - 1)
            rgb = tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))  # type: ignore[assignment]
        image.paste((*rgb, 255), (0, y, side, y + 1))
    return image


def sprite_side(size: str, k: int = SUPERSAMPLE) -> int:
    """The object's side in pixels at `k` times the native size: 11 or 19 px natively."""
    return round(2 * SIZES[size] * k)


def render(scene: Scene, rng: random.Random | None = None) -> Image.Image:
    """Draw the scene at SIZE x SIZE (RGB); rng adds the shapes world's jitter to each object's place."""
    k = SUPERSAMPLE
    canvas = background_image(scene.background).copy()
    for item in scene.items:
        fx, fy = POSITIONS[item.position]
        dx, dy = (rng.uniform(-JITTER, JITTER), rng.uniform(-JITTER, JITTER)) if rng else (0.0, 0.0)
        side = sprite_side(item.size)
        x, y = round((fx * SIZE + dx) * k - side / 2), round((fy * SIZE + dy) * k - side / 2)
        _paste(canvas, sprite_at(item.obj, side), x, y)
    return canvas.convert("RGB").reduce(k)


def _paste(canvas: Image.Image, sprite: Image.Image, x: int, y: int) -> None:
    """Composite with alpha; alpha_composite refuses negative offsets, so crop what falls off the top or left."""
    cx, cy = max(0, -x), max(0, -y)
    canvas.alpha_composite(sprite.crop((cx, cy, sprite.width, sprite.height)), (x + cx, y + cy))
