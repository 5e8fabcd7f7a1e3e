"""The procedural world the shipped model learns: coloured shapes on plain backgrounds.

Everything the model can draw is named here once, so the renderer, the caption writer, the tokenizer's
vocabulary and the evaluator's analyzer all agree on what "a big red star in the top left corner" means.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass

from PIL import Image, ImageDraw

SIZE = 32
"""Native resolution of the model, in pixels."""

SUPERSAMPLE = 4
"""Shapes are drawn this many times larger, then box-filtered down: anti-aliased edges."""

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 35, 35),
    "orange": (245, 135, 20),
    "yellow": (245, 220, 35),
    "green": (35, 165, 55),
    "blue": (35, 75, 225),
    "purple": (135, 45, 190),
    "pink": (250, 135, 195),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}

BACKGROUNDS: dict[str, tuple[int, int, int]] = {**COLORS, "gray": (128, 128, 128)}

SHAPES = ("circle", "square", "triangle", "star", "heart")

SIZES: dict[str, float] = {"small": 5.5, "big": 9.5}
"""Half the side of the shape's bounding box, in native pixels."""

_NEAR, _MID, _FAR = 0.29, 0.5, 0.71
POSITIONS: dict[str, tuple[float, float]] = {
    "center": (_MID, _MID),
    "left": (_NEAR, _MID),
    "right": (_FAR, _MID),
    "top": (_MID, _NEAR),
    "bottom": (_MID, _FAR),
    "top left": (_NEAR, _NEAR),
    "top right": (_FAR, _NEAR),
    "bottom left": (_NEAR, _FAR),
    "bottom right": (_FAR, _FAR),
}
"""Where a shape's centre sits, as fractions of the image's width and height."""

JITTER = 1.2
"""Largest random offset of a shape's centre from its named position, in native pixels."""

UNSEEN_PAIRS: frozenset[tuple[str, str]] = frozenset(
    {("green", "star"), ("purple", "heart"), ("yellow", "triangle"), ("pink", "square"), ("white", "circle")}
)
"""Colour-shape pairs never shown in training: the evaluator asks whether the model composes them."""


@dataclass(frozen=True)
class Scene:
    """One shape on one background: the attributes a caption names and the evaluator reads back."""

    shape: str
    color: str
    size: str
    position: str
    background: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def random_scene(rng: random.Random, allow_unseen: bool = False) -> Scene:
    """Draw a scene uniformly; shape and background colours always differ so the shape is visible."""
    while True:
        color = rng.choice(list(COLORS))
        shape = rng.choice(SHAPES)
        if not allow_unseen and (color, shape) in UNSEEN_PAIRS:
            continue
        background = rng.choice([b for b in BACKGROUNDS if b != color])
        return Scene(shape, color, rng.choice(list(SIZES)), rng.choice(list(POSITIONS)), background)


def _polygon(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    """Outline of a non-circular shape inside the box of half-side r centred on (cx, cy)."""
    if shape == "square":
        s = r * 0.85
        return [(cx - s, cy - s), (cx + s, cy - s), (cx + s, cy + s), (cx - s, cy + s)]
    if shape == "triangle":
        return [(cx, cy - r), (cx + r, cy + r * 0.85), (cx - r, cy + r * 0.85)]
    if shape == "star":
        points = []
        for i in range(10):
            radius = r if i % 2 == 0 else r * 0.42
            angle = -math.pi / 2 + i * math.pi / 5
            points.append((cx + radius * math.cos(angle), cy + radius * 1.05 * math.sin(angle) + r * 0.08))
        return points
    if shape == "heart":
        points = []
        for i in range(64):
            t = 2 * math.pi * i / 64
            x = 16 * math.sin(t) ** 3
            y = 13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)
            points.append((cx + x / 16.5 * r, cy - (y + 2.5) / 15.5 * r))
        return points
    raise ValueError(f"unknown shape {shape!r}")


def render(scene: Scene, rng: random.Random | None = None) -> Image.Image:
    """Draw the scene at SIZE x SIZE, anti-aliased; rng adds a small jitter to the shape's place."""
    k = SUPERSAMPLE
    fx, fy = POSITIONS[scene.position]
    dx, dy = (rng.uniform(-JITTER, JITTER), rng.uniform(-JITTER, JITTER)) if rng else (0.0, 0.0)
    cx, cy, r = (fx * SIZE + dx) * k, (fy * SIZE + dy) * k, SIZES[scene.size] * k
    image = Image.new("RGB", (SIZE * k, SIZE * k), BACKGROUNDS[scene.background])
    draw = ImageDraw.Draw(image)
    fill = COLORS[scene.color]
    if scene.shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    else:
        draw.polygon(_polygon(scene.shape, cx, cy, r), fill=fill)
    return image.reduce(k)
