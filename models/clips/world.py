"""The shapes world in motion: one coloured shape on a plain background, doing one thing for the whole clip.

The palette, the shapes and their outlines are the image model's (`models.shapes.world`), so a frame of a clip is
a picture of that world, which lets the clip model start from the image model's weights and lets the evaluator read
every frame with the image analyzer. What is new is the motion, named here once for the renderer, the caption writer
and the motion reader (`models.clips.motion`).
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass

from PIL import Image, ImageDraw

from models.shapes.world import BACKGROUNDS, COLORS, SHAPES, SIZE, SUPERSAMPLE, _polygon

FRAMES = 8
"""Frames of a training clip (the motion spans the clip, whatever its length)."""

MOTIONS = ("left", "right", "up", "down", "grow", "shrink", "spin", "bounce", "recolor")
"""What the shape does: moves towards a side, grows, shrinks, spins, bounces once, or changes colour."""

DIRECTIONS = ("left", "right", "up", "down")
"""The motions that move the shape across the frame (the evaluator's "direction")."""

RADIUS = 7.0
"""Half the side of the shape's box, in native pixels, for motions that keep the size."""

GROW_FROM, GROW_TO = 4.0, 11.0
"""Half-sides at the start and the end of growing (shrinking runs the other way)."""

NEAR, FAR = 0.25, 0.75
"""A moving shape's centre travels from NEAR to FAR of the frame (or back), crossing the middle."""

FLOOR, HOP = 0.72, 0.4
"""A bouncing shape starts and lands with its centre at FLOOR and rises HOP of the frame at the top."""

SPIN_DEGREES = 15.0
"""Turn per frame of an eight-frame clip (clockwise); longer clips turn the same total."""

JITTER = 1.2
"""Largest random offset of the path, in native pixels."""


@dataclass(frozen=True)
class ClipScene:
    """What a caption names and the evaluator reads back: the shape, its colour, what it does, the background."""

    shape: str
    color: str
    motion: str
    background: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def random_clip_scene(rng: random.Random) -> ClipScene:
    """Uniform over shape, colour, motion and background; the background never has the shape's colour."""
    color = rng.choice(list(COLORS))
    background = rng.choice([b for b in BACKGROUNDS if b != color])
    return ClipScene(rng.choice(SHAPES), color, rng.choice(MOTIONS), background)


@dataclass(frozen=True)
class Pose:
    """The shape in one frame: centre (fractions of the frame), half-side (pixels), turn (degrees), colour."""

    cx: float
    cy: float
    radius: float
    angle: float
    rgb: tuple[int, int, int]


def poses(scene: ClipScene, frames: int = FRAMES, rng: random.Random | None = None) -> list[Pose]:
    """The shape's path through `frames` frames; `rng` jitters the path and picks a recolouring's target."""
    if frames < 2:
        raise ValueError("a clip needs at least 2 frames")
    jx, jy = (rng.uniform(-JITTER, JITTER) / SIZE, rng.uniform(-JITTER, JITTER) / SIZE) if rng else (0.0, 0.0)
    start = COLORS[scene.color]
    end = start
    if scene.motion == "recolor":
        others = [c for c in COLORS if c not in (scene.color, scene.background)]
        end = COLORS[(rng or random.Random(0)).choice(others)]
    out = []
    for k in range(frames):
        t = k / (frames - 1)
        cx, cy, radius, angle = 0.5 + jx, 0.5 + jy, RADIUS, 0.0
        if scene.motion in ("left", "right"):
            cx = (FAR + (NEAR - FAR) * t if scene.motion == "left" else NEAR + (FAR - NEAR) * t) + jx
        elif scene.motion in ("up", "down"):
            cy = (FAR + (NEAR - FAR) * t if scene.motion == "up" else NEAR + (FAR - NEAR) * t) + jy
        elif scene.motion == "grow":
            radius = GROW_FROM + (GROW_TO - GROW_FROM) * t
        elif scene.motion == "shrink":
            radius = GROW_TO + (GROW_FROM - GROW_TO) * t
        elif scene.motion == "spin":
            angle = SPIN_DEGREES * (FRAMES - 1) * t
        elif scene.motion == "bounce":
            cy = FLOOR - HOP * math.sin(math.pi * t) + jy
        rgb = tuple(round(a + (b - a) * t) for a, b in zip(start, end, strict=True))
        out.append(Pose(cx, cy, radius, angle, (rgb[0], rgb[1], rgb[2])))
    return out


def _turned(points: list[tuple[float, float]], cx: float, cy: float, degrees: float) -> list[tuple[float, float]]:
    if not degrees:
        return points
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    return [(cx + (x - cx) * c - (y - cy) * s, cy + (x - cx) * s + (y - cy) * c) for x, y in points]


def draw(shape: str, background: str, pose: Pose, size: int = SIZE) -> Image.Image:
    """One frame at `size` x `size`, anti-aliased like the image model's pictures."""
    k = SUPERSAMPLE
    scale = size / SIZE * k
    cx, cy, r = pose.cx * size * k, pose.cy * size * k, pose.radius * scale
    image = Image.new("RGB", (size * k, size * k), BACKGROUNDS[background])
    canvas = ImageDraw.Draw(image)
    if shape == "circle":
        canvas.ellipse([cx - r, cy - r, cx + r, cy + r], fill=pose.rgb)
    else:
        canvas.polygon(_turned(_polygon(shape, cx, cy, r), cx, cy, pose.angle), fill=pose.rgb)
    return image.reduce(k)


def render_clip(
    scene: ClipScene, frames: int = FRAMES, rng: random.Random | None = None, size: int = SIZE
) -> list[Image.Image]:
    """The clip's frames, in order."""
    return [draw(scene.shape, scene.background, pose, size) for pose in poses(scene, frames, rng)]
