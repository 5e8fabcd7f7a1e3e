"""Score everyday pictures: `python -m models.everyday.evaluate [SNAPSHOT]`.

Draws the held-out prompts (`heldout`: single objects, pairs, free words; fixed seeds) from a probe snapshot
(the newest in `.data/everyday-probe/snapshots` by default) and reads every picture back:
- object: the asked object's rank among the renders of every object at the asked place, size and background, by
  the fixed feature (`feature`): top-1 and top-5, over all objects and over the probe's subset;
- position, size, background: by `reading` (no model), as the shapes evaluator does;
- two objects: both objects top-1 (and top-5) at their asked places, which also checks their order.
`--renders` scores the world's own renders instead of samples: the readers' ceiling (about 100%).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from models.shapes.evaluate import sample_grid

from .captions import canonical
from .catalog import objects
from .feature import rank
from .heldout import free_word_prompts, heldout_scenes, probe_subset
from .reading import read_layout
from .world import Scene, render

SNAPSHOTS = Path(__file__).resolve().parents[2] / ".data" / "everyday-probe" / "snapshots"
Draw = Callable[[list[str], list[int]], list[Image.Image]]


def _percent(hits: int, total: int) -> float:
    return round(100 * hits / max(1, total), 1)


def score_single(scenes: list[Scene], images: list[Image.Image], pool: tuple[int, ...] | None) -> dict[str, float]:
    """Object top-1/top-5 over all objects and over `pool`, position, size and background, in percent."""
    hits = dict.fromkeys(("top1", "top5", "pool_top1", "pool_top5", "position", "size", "background"), 0)
    for scene, image in zip(scenes, images, strict=True):
        (item,) = scene.items
        background, (seen,) = read_layout(image, scene)
        everything = rank(image, item, scene.background)
        hits["top1"] += everything == 0
        hits["top5"] += everything < 5
        if pool is not None:
            among = rank(image, item, scene.background, pool)
            hits["pool_top1"] += among == 0
            hits["pool_top5"] += among < 5
        hits["position"] += seen.position == item.position
        hits["size"] += seen.size == item.size
        hits["background"] += background == scene.background
    if pool is None:
        del hits["pool_top1"], hits["pool_top5"]
    return {name: _percent(count, len(scenes)) for name, count in hits.items()}


def score_pairs(scenes: list[Scene], images: list[Image.Image], pool: tuple[int, ...] | None) -> dict[str, float]:
    """Both objects first (or in the first five) at their asked places, among all objects and among `pool`."""
    hits = dict.fromkeys(("both_top1", "both_top5", "pool_both_top1", "pool_both_top5", "positions"), 0)
    for scene, image in zip(scenes, images, strict=True):
        everything = [rank(image, item, scene.background) for item in scene.items]
        hits["both_top1"] += max(everything) == 0
        hits["both_top5"] += max(everything) < 5
        if pool is not None:
            among = [rank(image, item, scene.background, pool) for item in scene.items]
            hits["pool_both_top1"] += max(among) == 0
            hits["pool_both_top5"] += max(among) < 5
        _, seen = read_layout(image, scene)
        hits["positions"] += all(s.position == i.position for s, i in zip(seen, scene.items, strict=True))
    if pool is None:
        del hits["pool_both_top1"], hits["pool_both_top5"]
    return {name: _percent(count, len(scenes)) for name, count in hits.items()}


def evaluate(draw: Draw, pool: tuple[int, ...] | None, limit: int | None = None) -> dict:
    """Every held-out set drawn by `draw(prompts, seeds)` and read back; `limit` takes the first scenes only."""
    single, pairs = heldout_scenes(pool)
    free = free_word_prompts(pool)
    single_list, pair_list, free_list = list(single[:limit]), list(pairs[:limit]), list(free[:limit])
    results: dict = {"objects": len(objects()), "pool": len(pool) if pool else len(objects())}
    images = draw([canonical(s) for s in single_list], list(range(len(single_list))))
    results["single"] = score_single(single_list, images, pool)
    results["grid"] = images[:40]
    pair_images = draw([canonical(s) for s in pair_list], list(range(len(pair_list))))
    results["pairs"] = score_pairs(pair_list, pair_images, pool)
    free_images = draw([f.prompt for f in free_list], list(range(len(free_list))))
    results["free_words"] = score_single([f.scene for f in free_list], free_images, pool)
    return results


def draw_renders(scenes_by_prompt: dict[str, Scene]) -> Draw:
    """A stand-in for a model that draws exactly what is asked (with the world's jitter): the readers' ceiling."""

    def draw(prompts: list[str], seeds: list[int]) -> list[Image.Image]:
        return [render(scenes_by_prompt[p], random.Random(s)) for p, s in zip(prompts, seeds, strict=True)]

    return draw


def _render_lookup(pool: tuple[int, ...] | None) -> dict[str, Scene]:
    single, pairs = heldout_scenes(pool)
    lookup = {canonical(s): s for s in (*single, *pairs)}
    lookup.update({f.prompt: f.scene for f in free_word_prompts(pool)})
    return lookup


def draw_snapshot(path: Path, steps: int, guidance: float, batch: int = 50) -> Draw:
    from .probe import load_snapshot
    from .sampling import generate

    unet, projection, _ = load_snapshot(path)

    def draw(prompts: list[str], seeds: list[int]) -> list[Image.Image]:
        images: list[Image.Image] = []
        for i in range(0, len(prompts), batch):
            images += generate(unet, projection, prompts[i : i + batch], seeds[i : i + batch], steps, guidance)
        return images

    return draw


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m models.everyday.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("snapshots", type=Path, nargs="*", help="probe snapshots, one JSON line each (default: the newest)")
    p.add_argument("--renders", action="store_true", help="score the world's own renders (the readers' ceiling)")
    p.add_argument("--all-objects", action="store_true", help="held-out scenes over every object, not the subset")
    p.add_argument("--limit", type=int, help="only the first N scenes of each set")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--guidance", type=float, default=4.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--grid", type=Path, help="save the first 40 single-object pictures here")
    a = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(a.threads)
    pool = None if a.all_objects else probe_subset()
    runs: list[tuple[dict, Draw]] = []
    if a.renders:
        runs.append(({"renders": True}, draw_renders(_render_lookup(pool))))
    for snapshot in a.snapshots or ([] if a.renders else [max(SNAPSHOTS.glob("step-*.safetensors"))]):
        runs.append(({"snapshot": str(snapshot)}, draw_snapshot(snapshot, a.steps, a.guidance)))
    for meta, draw in runs:  # one process for all: the candidates' features are computed once
        start = time.monotonic()
        results = evaluate(draw, pool, a.limit)
        grid = results.pop("grid")
        if a.grid:
            sample_grid(grid).save(a.grid.with_name(f"{a.grid.stem}-{Path(meta.get('snapshot', 'renders')).stem}.png"))
        print(json.dumps({**meta, **results, "seconds": round(time.monotonic() - start)}), flush=True)


if __name__ == "__main__":
    main()
