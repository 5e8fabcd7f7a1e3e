"""Read a picture of the shapes world back into words: background, colour, position, size and shape.

Deterministic and model-free: the background is the border's median colour, the shape is every pixel far from
it (with soft coverage for anti-aliased edges), and the shape's kind comes from a nearest-centroid classifier
over a few silhouette descriptors, fitted on the renderer's own pictures (seeded), so that real renders of the
world are read correctly by construction and a test checks it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image

from .world import BACKGROUNDS, COLORS, POSITIONS, SHAPES, SIZE, SIZES, Scene, random_scene, render

_SIZE_SPLIT = sum(2 * r for r in SIZES.values()) / 2
"""Bounding-box side between small and big, in native pixels."""


@dataclass(frozen=True)
class Reading:
    """What the analyzer saw; `None` where no shape stood out from the background."""

    background: str
    color: str | None
    shape: str | None
    position: str | None
    size: str | None

    def matches(self, scene: Scene) -> dict[str, bool]:
        return {
            "color": self.color == scene.color,
            "shape": self.shape == scene.shape,
            "position": self.position == scene.position,
            "size": self.size == scene.size,
            "background": self.background == scene.background,
        }


def _nearest(rgb: np.ndarray, palette: dict[str, tuple[int, int, int]]) -> str:
    names = list(palette)
    distances = np.linalg.norm(np.array([palette[n] for n in names], dtype=np.float32) - rgb, axis=1)
    return names[int(distances.argmin())]


def _as_native(image: Image.Image) -> np.ndarray:
    image = image.convert("RGB")
    if image.size != (SIZE, SIZE):
        image = image.resize((SIZE, SIZE), Image.Resampling.BOX)
    return np.asarray(image, dtype=np.float32)


def _coverage(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(soft foreground coverage in [0, 1] per pixel, background colour)."""
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    background = np.median(border, axis=0)
    distance = np.linalg.norm(pixels - background, axis=2)
    peak = np.percentile(distance, 99)
    if peak < 40:
        return np.zeros(distance.shape, dtype=np.float32), background
    return np.clip((distance - 0.15 * peak) / (0.7 * peak), 0.0, 1.0), background


def _descriptor(coverage: np.ndarray) -> np.ndarray | None:
    """Silhouette features that do not depend on the shape's place or size."""
    ys, xs = np.nonzero(coverage > 0.5)
    if len(xs) < 4:
        return None
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    box = coverage[y0:y1, x0:x1]
    h, w = box.shape
    fill = box.sum() / (h * w)
    bands = [band.mean() if band.size else 0.0 for band in np.array_split(box, 4, axis=0)]
    columns = [col.mean() if col.size else 0.0 for col in np.array_split(box, 3, axis=1)]
    corners = [
        box[: max(1, h // 4), : max(1, w // 4)].mean(),
        box[: max(1, h // 4), -max(1, w // 4) :].mean(),
        box[-max(1, h // 4) :, : max(1, w // 4)].mean(),
        box[-max(1, h // 4) :, -max(1, w // 4) :].mean(),
    ]
    return np.array([fill, h / w, *bands, *columns, *corners], dtype=np.float32)


@cache
def _centroids() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-shape mean descriptor, and the feature scale, from 300 seeded renders of each shape."""
    rng = random.Random(7)
    features: dict[str, list[np.ndarray]] = {shape: [] for shape in SHAPES}
    while min(len(v) for v in features.values()) < 300:
        scene = random_scene(rng, allow_unseen=True)
        descriptor = _descriptor(_coverage(_as_native(render(scene, rng)))[0])
        if descriptor is not None:
            features[scene.shape].append(descriptor)
    stacked = np.stack([np.stack(features[s][:300]) for s in SHAPES])
    scale = stacked.reshape(-1, stacked.shape[-1]).std(axis=0) + 1e-3
    return stacked.mean(axis=1), scale, np.array(SHAPES)


def _position(cx: float, cy: float) -> str:
    col = "left" if cx < 0.4 else "right" if cx > 0.6 else ""
    row = "top" if cy < 0.4 else "bottom" if cy > 0.6 else ""
    name = f"{row} {col}".strip() or "center"
    assert name in POSITIONS
    return name


def analyze(image: Image.Image) -> Reading:
    pixels = _as_native(image)
    coverage, background_rgb = _coverage(pixels)
    background = _nearest(background_rgb, BACKGROUNDS)
    total = coverage.sum()
    if total < 4:
        return Reading(background, None, None, None, None)
    core = coverage > 0.8
    color_rgb = pixels[core].mean(axis=0) if core.sum() >= 2 else (pixels * coverage[..., None]).sum((0, 1)) / total
    solid_ys, solid_xs = np.nonzero(coverage > 0.5)
    if len(solid_xs) == 0:
        return Reading(background, _nearest(color_rgb, COLORS), None, None, None)
    # The bounding box's centre, not the centroid: a triangle's mass sits low, a heart's high.
    cx = (solid_xs.min() + solid_xs.max() + 1) / 2 / SIZE
    cy = (solid_ys.min() + solid_ys.max() + 1) / 2 / SIZE
    side = max(np.ptp(solid_xs), np.ptp(solid_ys)) + 1
    descriptor = _descriptor(coverage)
    shape = None
    if descriptor is not None:
        centroids, scale, names = _centroids()
        shape = str(names[int(np.linalg.norm((centroids - descriptor) / scale, axis=1).argmin())])
    return Reading(
        background=background,
        color=_nearest(color_rgb, COLORS),
        shape=shape,
        position=_position(cx, cy),
        size="big" if side > _SIZE_SPLIT else "small",
    )
