"""Read a clip back into words: the image analyzer on every frame, and the motion from the shape's track.

Each frame gives the image analyzer's reading (colour, shape, background) and the shape's box: its centre, its
area and its silhouette. The motion follows from how those change between the first and the last frame (and the
highest point in between, for a bounce), with thresholds at about half of what the world's own motions do, so
real renders are read right by construction (a test checks every motion) and a clip that only drifts is "still".
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
from PIL import Image

from models.shapes.analyzer import Reading, _as_native, _coverage, _nearest, analyze
from models.shapes.world import COLORS

from .world import GROW_FROM, GROW_TO, HOP, ClipScene

MOVE = 0.25
"""Net travel (fraction of the frame) that counts as moving; the world's moves travel 0.5."""

RISE = 0.5 * HOP
"""How far above both ends the shape must get to count as a bounce."""

SCALE = GROW_TO / GROW_FROM
"""Area ratio, last frame to first, that counts as growing (inverted: shrinking); the world's is its square."""

RECOLOR = 80.0
"""RGB distance between the first and the last frame's colour that counts as a change of colour."""

TURN = 0.12
"""Share of the silhouette that must differ from the first frame's (centred) to count as spinning."""


@dataclass(frozen=True)
class Frame:
    """One frame's reading and the shape's place: centre (fractions), area (pixels), colour and silhouette."""

    reading: Reading
    cx: float
    cy: float
    area: float
    rgb: np.ndarray
    mask: np.ndarray


@dataclass(frozen=True)
class ClipReading:
    """What the reader saw in a whole clip; `None` where it could not tell."""

    frames: tuple[Frame | None, ...]
    color: str | None
    shape: str | None
    background: str | None
    motion: str | None

    def matches(self, scene: ClipScene) -> dict[str, bool]:
        return {
            "color": self.color == scene.color,
            "shape": self.shape == scene.shape,
            "background": self.background == scene.background,
            "motion": self.motion == scene.motion,
        }

    def frame_colors(self) -> list[str | None]:
        return [f.reading.color if f is not None else None for f in self.frames]


def read_frame(image: Image.Image) -> Frame | None:
    """The frame's reading and the shape's box, or None when no shape stands out."""
    reading = analyze(image)
    pixels = _as_native(image)
    coverage, _ = _coverage(pixels)
    ys, xs = np.nonzero(coverage > 0.5)
    if reading.color is None or len(xs) < 2:
        return None
    size = coverage.shape[0]
    core = coverage > 0.8
    rgb = pixels[core].mean(axis=0) if core.sum() >= 2 else pixels[coverage > 0.5].mean(axis=0)
    box = (coverage > 0.5)[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    return Frame(
        reading=reading,
        cx=(xs.min() + xs.max() + 1) / 2 / size,
        cy=(ys.min() + ys.max() + 1) / 2 / size,
        area=float(coverage.sum()),
        rgb=rgb,
        mask=box,
    )


def _mismatch(a: np.ndarray, b: np.ndarray) -> float:
    """Share of the union of two silhouettes, each centred on a common canvas, that only one of them covers."""
    h, w = max(a.shape[0], b.shape[0]), max(a.shape[1], b.shape[1])
    canvas = np.zeros((2, h, w), dtype=bool)
    for i, m in enumerate((a, b)):
        y, x = (h - m.shape[0]) // 2, (w - m.shape[1]) // 2
        canvas[i, y : y + m.shape[0], x : x + m.shape[1]] = m
    union = (canvas[0] | canvas[1]).sum()
    return float((canvas[0] ^ canvas[1]).sum() / union) if union else 0.0


def classify(frames: list[Frame]) -> str:
    """The motion of a track of at least two frames (first and last are what count, plus the peak for a bounce)."""
    first, last = frames[0], frames[-1]
    dx, dy = last.cx - first.cx, last.cy - first.cy
    if max(abs(dx), abs(dy)) >= MOVE:
        if abs(dx) >= abs(dy):
            return "right" if dx > 0 else "left"
        return "down" if dy > 0 else "up"
    rise = min(first.cy, last.cy) - min(f.cy for f in frames)
    if rise >= RISE:
        return "bounce"
    ratio = last.area / max(first.area, 1e-6)
    if ratio >= SCALE:
        return "grow"
    if ratio <= 1 / SCALE:
        return "shrink"
    if float(np.linalg.norm(last.rgb - first.rgb)) >= RECOLOR and _nearest(last.rgb, COLORS) != _nearest(
        first.rgb, COLORS
    ):
        return "recolor"
    if max(_mismatch(first.mask, f.mask) for f in frames[1:]) >= TURN:
        return "spin"
    return "still"


def _majority(values: list[str | None]) -> str | None:
    seen = [v for v in values if v is not None]
    return Counter(seen).most_common(1)[0][0] if seen else None


def read_clip(images: list[Image.Image]) -> ClipReading:
    """Read every frame, then the clip: the motion, the majority shape and background, the first frame's colour.

    The colour is the first frame's so that a clip that changes colour is judged on the colour it was asked to
    start from; `frame_colors` has the colour of every frame.
    """
    frames = tuple(read_frame(image) for image in images)
    present = [f for f in frames if f is not None]
    if len(present) < max(2, len(frames) // 2):
        background = _majority([analyze(image).background for image in images])
        return ClipReading(frames, None, None, background, None)
    motion = classify(present)
    # The image analyzer knows upright shapes: a spinning one is judged by its first (unturned) frame.
    shape = present[0].reading.shape if motion == "spin" else _majority([f.reading.shape for f in present])
    return ClipReading(
        frames=frames,
        color=present[0].reading.color,
        shape=shape,
        background=_majority([f.reading.background for f in present]),
        motion=motion,
    )
