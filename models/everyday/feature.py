"""The evaluator's fixed feature: a small CNN trained on renders of the world (never on model outputs).

It sees a window around an object's asked place (`crop`) and is trained to name the object among all of the
sheet's pictures, on every background, at both sizes, with the world's jitter plus blur and noise (so a soft,
grainy picture from a diffusion model is still read). Its penultimate layer is the feature by which the evaluator
ranks candidate renders (`rank`). `python -m models.everyday.feature` trains it (minutes on one core) and writes
`assets/feature.safetensors` (about 1 MB), which is committed: the evaluator's numbers must not move between runs.
"""

from __future__ import annotations

import argparse
import random
import time
from functools import cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import nn

from models.shapes.world import POSITIONS, SIZE, SIZES

from .catalog import ASSETS, objects
from .world import Placed, Scene, random_scene, render

WEIGHTS = ASSETS / "feature.safetensors"
CROP = 24
"""Side of the window the CNN reads, in its own pixels."""
MARGIN = 3.0
"""Native pixels around the object's box that the window also takes in (the jitter is 1.2)."""
EMBED = 128


def window(position: str, size: str) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) in native pixels around the asked place: the object's box plus MARGIN."""
    fx, fy = POSITIONS[position]
    half = SIZES[size] + MARGIN
    return (fx * SIZE - half, fy * SIZE - half, fx * SIZE + half, fy * SIZE + half)


def crop(image: Image.Image, item: Placed) -> np.ndarray:
    """The window around `item`'s asked place, resized to CROP x CROP, as float32 (3, CROP, CROP) in [0, 1]."""
    native = image.convert("RGB")
    if native.size != (SIZE, SIZE):
        native = native.resize((SIZE, SIZE), Image.Resampling.BOX)
    box = window(item.position, item.size)
    patch = native.transform((CROP, CROP), Image.Transform.EXTENT, box, Image.Resampling.BILINEAR, fillcolor=None)
    return np.asarray(patch, dtype=np.float32).transpose(2, 0, 1) / 255.0


class Feature(nn.Module):
    """Four convolutions, global pooling, a 128-wide embedding, a linear head over the objects."""

    def __init__(self, classes: int) -> None:
        super().__init__()

        def block(cin: int, cout: int, stride: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.GroupNorm(8, cout), nn.SiLU())

        self.body = nn.Sequential(block(3, 32, 1), block(32, 64, 2), block(64, 128, 2), block(128, 128, 1))
        self.embed = nn.Linear(128, EMBED)
        self.head = nn.Linear(EMBED, classes)

    def embedding(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(self.body(x * 2 - 1).mean(dim=(2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.silu(self.embedding(x)))


@cache
def load() -> Feature:
    model = Feature(len(objects()))
    model.load_state_dict(load_file(WEIGHTS))
    return model.eval().requires_grad_(False)


@torch.no_grad()
def embed(crops: np.ndarray) -> torch.Tensor:
    """(n, 3, CROP, CROP) crops -> (n, EMBED) L2-normalised features."""
    return F.normalize(load().embedding(torch.from_numpy(crops)), dim=-1)


@cache
def candidates(position: str, size: str, background: str) -> torch.Tensor:
    """Features of every object rendered alone at the asked place, size and background (no jitter), cached."""
    crops = [
        crop(render(Scene((Placed(i, size, position),), background)), Placed(i, size, position))
        for i in range(len(objects()))
    ]
    return embed(np.stack(crops))


def rank(image: Image.Image, item: Placed, background: str, among: tuple[int, ...] | None = None) -> int:
    """Where the asked object ranks (0 = first) among the renders of all objects (or of those in `among`, which
    holds it), by cosine similarity of the feature."""
    target = embed(crop(image, item)[None])[0]
    similarity = candidates(item.position, item.size, background) @ target
    if among is not None:
        similarity = similarity[list(among)]
        return int((similarity > similarity[among.index(item.obj)]).sum())
    return int((similarity > similarity[item.obj]).sum())


# ---------------------------------------------------------------------------------------------- training


def _degrade(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Half the crops blurred a little, all with some noise: what a soft, grainy sample looks like."""
    blurred = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    mix = (torch.rand(len(x), 1, 1, 1, generator=gen) < 0.5).float() * torch.rand(len(x), 1, 1, 1, generator=gen)
    noise = torch.randn(x.shape, generator=gen) * torch.rand(len(x), 1, 1, 1, generator=gen) * 0.08
    return (x * (1 - mix) + blurred * mix + noise).clamp(0, 1)


def batch(rng: random.Random, size: int) -> tuple[np.ndarray, np.ndarray]:
    crops: list[np.ndarray] = []
    labels: list[int] = []
    pool = range(len(objects()))
    while len(crops) < size:
        scene = random_scene(rng, pool, two_share=0.2)
        image = render(scene, rng)
        for item in scene.items:
            crops.append(crop(image, item))
            labels.append(item.obj)
    return np.stack(crops[:size]), np.array(labels[:size])


def train(steps: int, batch_size: int, seed: int, out: Path) -> None:
    torch.manual_seed(seed)
    rng, gen = random.Random(seed), torch.Generator().manual_seed(seed)
    model = Feature(len(objects()))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps, pct_start=0.1)
    start = time.monotonic()
    for step in range(1, steps + 1):
        x, y = batch(rng, batch_size)
        logits = model(_degrade(torch.from_numpy(x), gen))
        loss = F.cross_entropy(logits, torch.from_numpy(y))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 100 == 0:
            accuracy = (logits.argmax(1).numpy() == y).mean()
            print(f"step {step} loss {loss.item():.3f} batch accuracy {accuracy:.3f} {time.monotonic() - start:.0f} s")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m models.everyday.feature", description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=WEIGHTS)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    train(a.steps, a.batch, a.seed, a.out)


if __name__ == "__main__":
    main()
