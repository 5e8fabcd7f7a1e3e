"""Score the shipped model: `python -m models.shapes.evaluate [FOLDER]`.

Renders the held-out prompts with fixed seeds, reads every picture back with the analyzer, and prints accuracy
per attribute, apart for the colour-shape pairs training never showed. Paraphrased prompts (phrasings drawn from
the caption writer, other than the canonical one) are scored too, and the time per image at batch 1 and 4.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

import torch
from diffusers import DiffusionPipeline
from PIL import Image
from tqdm import tqdm

from . import unet as _unet  # noqa: F401 - the folder names this UNet class; diffusers needs it imported
from .analyzer import analyze
from .captions import canonical, caption
from .heldout import heldout_scenes
from .world import SIZE, Scene

ATTRIBUTES = ("color", "shape", "position", "size", "background")
DEFAULT_FOLDER = Path(__file__).resolve().parent / "weights"


def load(folder: Path) -> DiffusionPipeline:
    pipe = DiffusionPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def generate(
    pipe: DiffusionPipeline, prompts: list[str], seeds: list[int], steps: int, guidance: float, batch: int = 25
) -> list[Image.Image]:
    """One image per prompt, each from its own seeded generator, in batches."""
    images: list[Image.Image] = []
    for i in tqdm(range(0, len(prompts), batch), desc="generate", leave=False):
        generators = [torch.Generator().manual_seed(s) for s in seeds[i : i + batch]]
        out = pipe(prompts[i : i + batch], num_inference_steps=steps, guidance_scale=guidance, generator=generators)
        images.extend(out.images)
    return images


def score(scenes: tuple[Scene, ...], images: list[Image.Image]) -> dict[str, float]:
    hits = {a: 0 for a in (*ATTRIBUTES, "all")}
    for scene, image in zip(scenes, images, strict=True):
        matched = analyze(image).matches(scene)
        for name, ok in matched.items():
            hits[name] += ok
        hits["all"] += all(matched.values())
    return {name: round(100 * count / len(scenes), 1) for name, count in hits.items()}


def time_per_image(pipe: DiffusionPipeline, batch: int, steps: int, guidance: float, repeats: int = 3) -> float:
    prompts = ["a big red star in the top left corner on a black background"] * batch
    pipe(prompts, num_inference_steps=2, guidance_scale=guidance)  # warm-up
    start = time.perf_counter()
    for r in range(repeats):
        pipe(prompts, num_inference_steps=steps, guidance_scale=guidance, generator=torch.Generator().manual_seed(r))
    return (time.perf_counter() - start) / repeats / batch


def sample_grid(images: list[Image.Image], columns: int = 10, scale: int = 3) -> Image.Image:
    rows = (len(images) + columns - 1) // columns
    grid = Image.new("RGB", (columns * SIZE * scale, rows * SIZE * scale), "white")
    for i, image in enumerate(images):
        tile = image.resize((SIZE * scale, SIZE * scale), Image.Resampling.NEAREST)
        grid.paste(tile, ((i % columns) * SIZE * scale, (i // columns) * SIZE * scale))
    return grid


def evaluate(folder: Path, steps: int, guidance: float, timing: bool) -> dict:
    pipe = load(folder)
    seen, unseen = heldout_scenes()
    rng = random.Random(5)
    results: dict = {"steps": steps, "guidance": guidance, "prompts": {"seen": len(seen), "unseen": len(unseen)}}
    for label, scenes in (("seen", seen), ("unseen", unseen)):
        seeds = list(range(len(scenes)))
        canonical_images = generate(pipe, [canonical(s) for s in scenes], seeds, steps, guidance)
        paraphrases = [caption(s, rng) for s in scenes]
        results[label] = score(scenes, canonical_images)
        results[f"{label}_paraphrased"] = score(scenes, generate(pipe, paraphrases, seeds, steps, guidance))
        if label == "seen":
            results["grid"] = canonical_images[:40]
    if timing:
        results["seconds_per_image"] = {
            f"batch_{b}": round(time_per_image(pipe, b, steps, guidance), 3) for b in (1, 4)
        }
    return results


def print_table(results: dict) -> None:
    print(f"{'set':<22}" + "".join(f"{a:>11}" for a in (*ATTRIBUTES, "all")))
    for label in ("seen", "seen_paraphrased", "unseen", "unseen_paraphrased"):
        print(f"{label:<22}" + "".join(f"{results[label][a]:>10}%" for a in (*ATTRIBUTES, "all")))
    if "seconds_per_image" in results:
        print("seconds per image at", results["steps"], "steps:", results["seconds_per_image"])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m models.shapes.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("folder", type=Path, nargs="?", default=DEFAULT_FOLDER)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--guidance", type=float, default=4.0)
    p.add_argument("--no-timing", dest="timing", action="store_false")
    p.add_argument("--write", action="store_true", help="save evaluation.json and samples.png into the folder")
    a = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    results = evaluate(a.folder, a.steps, a.guidance, a.timing)
    grid = results.pop("grid")
    print_table(results)
    if a.write:
        (a.folder / "evaluation.json").write_text(json.dumps(results, indent=2) + "\n")
        sample_grid(grid).save(a.folder / "samples.png")


if __name__ == "__main__":
    main()
