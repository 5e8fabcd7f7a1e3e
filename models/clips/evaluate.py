"""Score the clip model: `python -m models.clips.evaluate [FOLDER]`.

Makes a clip for every held-out prompt (fixed seeds), reads every frame back with the image analyzer and the
motion from the shape's track (`models.clips.motion`), and prints accuracy per attribute: colour, shape,
background, motion (all nine), direction (the four moves), and the share of frames whose colour is the asked one.
`--write` saves evaluation.json and samples.png (a strip of frames from 4 samples) into the folder for the card.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import torch
from diffusers import DiffusionPipeline
from PIL import Image
from tqdm import tqdm

from . import unet as _unet  # noqa: F401 - the folder names this UNet class; diffusers needs it imported
from .captions import canonical
from .heldout import heldout_scenes
from .motion import read_clip
from .world import DIRECTIONS, FRAMES, MOTIONS, ClipScene

ATTRIBUTES = ("color", "shape", "background", "motion")
DEFAULT_FOLDER = Path(__file__).resolve().parent / "weights"
STRIP_MOTIONS = ("right", "up", "grow", "spin")


def load(folder: Path, device: str = "cpu") -> Any:
    pipe = DiffusionPipeline.from_pretrained(folder).to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def generate(
    pipe: Any, prompts: list[str], seeds: list[int], frames: int, steps: int, guidance: float, batch: int = 8
) -> list[list[Image.Image]]:
    """One clip per prompt, each from its own seeded generator, in batches."""
    clips: list[list[Image.Image]] = []
    for i in tqdm(range(0, len(prompts), batch), desc="generate", leave=False):
        generators = [torch.Generator().manual_seed(s) for s in seeds[i : i + batch]]
        out = pipe(
            prompts[i : i + batch],
            num_frames=frames,
            num_inference_steps=steps,
            guidance_scale=guidance,
            generator=generators,
            output_type="pil",
        )
        clips.extend(list(video) for video in out.frames)
    return clips


def score(scenes: tuple[ClipScene, ...] | list[ClipScene], clips: list[list[Image.Image]]) -> dict[str, Any]:
    """Accuracy per attribute (percent), per motion, and the colour of every frame of clips that keep their colour."""
    hits = {a: 0 for a in (*ATTRIBUTES, "all")}
    per_motion = {m: [0, 0] for m in MOTIONS}
    moves = [0, 0]
    frame_hits = frame_count = 0
    confusion: dict[str, dict[str, int]] = {}
    for scene, clip in zip(scenes, clips, strict=True):
        reading = read_clip(clip)
        matched = reading.matches(scene)
        for name, ok in matched.items():
            hits[name] += ok
        hits["all"] += all(matched.values())
        per_motion[scene.motion][0] += matched["motion"]
        per_motion[scene.motion][1] += 1
        if scene.motion in DIRECTIONS:
            moves[0] += matched["motion"]
            moves[1] += 1
        if scene.motion != "recolor":
            colors = reading.frame_colors()
            frame_hits += sum(c == scene.color for c in colors)
            frame_count += len(colors)
        row = confusion.setdefault(scene.motion, {})
        row[str(reading.motion)] = row.get(str(reading.motion), 0) + 1
    n = max(1, len(clips))
    result: dict[str, Any] = {name: round(100 * count / n, 1) for name, count in hits.items()}
    result["direction"] = round(100 * moves[0] / moves[1], 1) if moves[1] else None
    result["frame_color"] = round(100 * frame_hits / frame_count, 1) if frame_count else None
    result["per_motion"] = {m: round(100 * a / b, 1) for m, (a, b) in per_motion.items() if b}
    result["confusion"] = confusion
    return result


def strip(clips: list[list[Image.Image]], scale: int | None = None) -> Image.Image:
    """Frames left to right, one clip a row, each frame enlarged to about 96 pixels."""
    w, h = clips[0][0].size
    scale = scale or max(1, 96 // w)
    columns = max(len(c) for c in clips)
    sheet = Image.new("RGB", (columns * w * scale, len(clips) * h * scale), "white")
    for row, clip in enumerate(clips):
        for col, frame in enumerate(clip):
            tile = frame.resize((w * scale, h * scale), Image.Resampling.NEAREST)
            sheet.paste(tile, (col * w * scale, row * h * scale))
    return sheet


def evaluate(
    folder: Path,
    steps: int,
    guidance: float,
    frames: int,
    limit: int | None = None,
    device: str = "cpu",
    motions: tuple[str, ...] = MOTIONS,
) -> dict[str, Any]:
    pipe = load(folder, device)
    every = heldout_scenes()
    scenes = tuple(s for s in every if s.motion in motions)
    if limit:
        # An even share of every motion, for a quick look.
        share = max(1, limit // len(motions))
        scenes = tuple(s for m in motions for s in [x for x in scenes if x.motion == m][:share])
    seeds = [every.index(s) for s in scenes]  # a prompt's seed is its place among all held-out prompts
    started = time.perf_counter()
    clips = generate(pipe, [canonical(s) for s in scenes], seeds, frames, steps, guidance)
    seconds = time.perf_counter() - started
    results: dict[str, Any] = {
        "steps": steps,
        "guidance": guidance,
        "frames": frames,
        "prompts": len(scenes),
        "threads": torch.get_num_threads(),
        "device": device,
        "size": list(clips[0][0].size),
        "seconds_per_clip": round(seconds / len(scenes), 2),
        "heldout": score(scenes, clips),
    }
    shown = []
    for motion in STRIP_MOTIONS:
        index = next((i for i, s in enumerate(scenes) if s.motion == motion), None)
        if index is not None:
            shown.append({"prompt": canonical(scenes[index]), "seed": seeds[index], "clip": clips[index]})
    results["strip"] = shown
    return results


def print_table(results: dict[str, Any]) -> None:
    scores = results["heldout"]
    names = (*ATTRIBUTES, "direction", "frame_color", "all")
    print(f"{'held-out prompts':<20}" + "".join(f"{a:>13}" for a in names))
    print(f"{results['prompts']:<20}" + "".join(f"{scores[a]!s:>12}%" for a in names))
    print("motion by motion:", ", ".join(f"{m} {v}%" for m, v in scores["per_motion"].items()))
    where = f"{results['threads']} threads" if results["device"] == "cpu" else results["device"]
    print(f"{results['seconds_per_clip']} s a clip at {results['steps']} steps ({where})")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m models.clips.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("folder", type=Path, nargs="?", default=DEFAULT_FOLDER)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--guidance", type=float, default=4.0)
    p.add_argument("--frames", type=int, default=FRAMES)
    p.add_argument("--limit", type=int, default=0, help="evaluate about this many prompts (an even share per motion)")
    p.add_argument("--motions", default=",".join(MOTIONS), help="only the held-out prompts of these motions")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--device", default="cpu", help="where to run the pipeline (cpu, cuda)")
    p.add_argument("--write", action="store_true", help="save evaluation.json and samples.png into the folder")
    a = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if a.threads:
        torch.set_num_threads(a.threads)
    results = evaluate(a.folder, a.steps, a.guidance, a.frames, a.limit or None, a.device, tuple(a.motions.split(",")))
    shown = results.pop("strip")
    print_table(results)
    if a.write:
        results["strip"] = [{"prompt": s["prompt"], "seed": s["seed"]} for s in shown]
        (a.folder / "evaluation.json").write_text(json.dumps(results, indent=2) + "\n")
        if shown:
            strip([s["clip"] for s in shown]).save(a.folder / "samples.png")


if __name__ == "__main__":
    main()
