"""Read a picture of the everyday world back, without a model: background, where the objects are, their size.

The background is the candidate whose own picture (plain colour, sky over grass, gradient) is nearest the image's
border, by the median distance over the border's pixels (an object touching an edge does not move a median).
Everything far from that background picture is foreground; an object's place is the centre of its foreground's
bounding box (as the shapes analyzer reads shapes) and its size the box's longer side. Two objects are read apart
by cutting the picture between their asked places. What the object is, is the learned feature's job (`feature`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image

from models.shapes.world import POSITIONS, SIZE, SIZES

from .world import BACKGROUNDS, PAIR_LAYOUTS, SUPERSAMPLE, Scene, background_image

FOREGROUND = 30.0
"""RGB distance from the background picture above which a pixel belongs to an object."""

_SIZE_SPLIT = sum(2 * r for r in SIZES.values()) / 2
"""Longer side of the bounding box between small (11 px) and big (19 px)."""


@dataclass(frozen=True)
class Placement:
    """Where one object was seen; None where nothing stood out."""

    position: str | None
    size: str | None


def as_native(image: Image.Image) -> np.ndarray:
    """The picture as (SIZE, SIZE, 3) float32, box-filtered down when it is larger."""
    image = image.convert("RGB")
    if image.size != (SIZE, SIZE):
        image = image.resize((SIZE, SIZE), Image.Resampling.BOX)
    return np.asarray(image, dtype=np.float32)


@cache
def background_pixels(name: str) -> np.ndarray:
    """The background as `render` draws it (drawn large, then box-filtered down: the horizon row is a blend)."""
    return np.asarray(background_image(name).convert("RGB").reduce(SUPERSAMPLE), dtype=np.float32)


def _border(pixels: np.ndarray) -> np.ndarray:
    mask = np.zeros(pixels.shape[:2], dtype=bool)
    mask[[0, 1, -2, -1], :] = True
    mask[:, [0, 1, -2, -1]] = True
    return mask


def read_background(pixels: np.ndarray) -> str:
    border = _border(pixels)
    distances = [np.median(np.linalg.norm(pixels - background_pixels(b), axis=2)[border]) for b in BACKGROUNDS]
    return BACKGROUNDS[int(np.argmin(distances))]


def foreground(pixels: np.ndarray, background: str) -> np.ndarray:
    """Boolean (SIZE, SIZE): the pixels far from the background's own picture, after a 3x3 mean of the distance
    (a sample's grain of lone off-colour pixels is not an object)."""
    distance = np.linalg.norm(pixels - background_pixels(background), axis=2)
    padded = np.pad(distance, 1, mode="edge")
    smooth = sum(padded[dy : dy + SIZE, dx : dx + SIZE] for dy in range(3) for dx in range(3)) / 9
    return (smooth > FOREGROUND) & (distance > FOREGROUND / 2)


def main_parts(mask: np.ndarray, share: float = 0.25) -> np.ndarray:
    """The mask's 4-connected parts of at least `share` of the largest one's pixels: an object in several pieces
    (eyes, footprints) keeps them all, a few stray blobs of a grainy sample are dropped."""
    labels = np.zeros(mask.shape, dtype=np.int32)
    sizes = [0]
    for start in zip(*np.nonzero(mask), strict=True):
        if labels[start]:
            continue
        sizes.append(0)
        stack = [start]
        labels[start] = len(sizes) - 1
        while stack:
            y, x = stack.pop()
            sizes[-1] += 1
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1] and mask[ny, nx] and not labels[ny, nx]:
                    labels[ny, nx] = len(sizes) - 1
                    stack.append((ny, nx))
    keep = [i for i, n in enumerate(sizes) if i and n >= share * max(sizes)]
    return np.isin(labels, keep)


def position_name(cx: float, cy: float) -> str:
    """Centre (fractions of the side) -> the nearest named place, by the shapes analyzer's thirds."""
    col = "left" if cx < 0.4 else "right" if cx > 0.6 else ""
    row = "top" if cy < 0.4 else "bottom" if cy > 0.6 else ""
    name = f"{row} {col}".strip() or "center"
    assert name in POSITIONS
    return name


def placement(mask: np.ndarray) -> Placement:
    ys, xs = np.nonzero(mask)
    if len(xs) < 3:
        return Placement(None, None)
    cx = (xs.min() + xs.max() + 1) / 2 / SIZE
    cy = (ys.min() + ys.max() + 1) / 2 / SIZE
    side = max(np.ptp(xs), np.ptp(ys)) + 1
    return Placement(position_name(cx, cy), "big" if side > _SIZE_SPLIT else "small")


def halves(mask: np.ndarray, scene: Scene) -> list[np.ndarray]:
    """The foreground cut in two between a two-object scene's asked places (one mask for a single object)."""
    if len(scene.items) == 1:
        return [mask]
    first, second = (POSITIONS[p.position] for p in scene.items)
    vertical = PAIR_LAYOUTS[(scene.items[0].position, scene.items[1].position)] == "vertical"
    axis = 1 if vertical else 0
    cut = round((first[axis] + second[axis]) / 2 * SIZE)
    a, b = mask.copy(), mask.copy()
    if vertical:
        a[cut:], b[:cut] = False, False
    else:
        a[:, cut:], b[:, :cut] = False, False
    return [a, b]


def read_layout(image: Image.Image, scene: Scene) -> tuple[str, list[Placement]]:
    """(background, one placement per object the scene asks for)."""
    pixels = as_native(image)
    background = read_background(pixels)
    return background, [placement(main_parts(m)) for m in halves(foreground(pixels, background), scene)]
