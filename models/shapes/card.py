"""Write the model card (README.md in the weights folder) from what training and evaluation recorded.

`python -m models.shapes.card [FOLDER]` after `python -m models.shapes.evaluate --write`: the card's figures are
read from training.json and evaluation.json, never typed by hand.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .captions import POSITION_WORDS, SIZE_WORDS
from .evaluate import ATTRIBUTES, DEFAULT_FOLDER
from .world import BACKGROUNDS, COLORS, SHAPES, SIZE, UNSEEN_PAIRS


def _table(evaluation: dict) -> str:
    head = "| prompts | " + " | ".join(ATTRIBUTES) + " | all five |\n|---|" + "---|" * (len(ATTRIBUTES) + 1)
    rows = []
    labels = {
        "seen": "held-out, canonical phrasing",
        "seen_paraphrased": "held-out, other phrasings",
        "unseen": "unseen colour-shape pairs",
        "unseen_paraphrased": "unseen pairs, other phrasings",
    }
    for key, label in labels.items():
        scores = evaluation[key]
        rows.append(f"| {label} | " + " | ".join(f"{scores[a]}%" for a in (*ATTRIBUTES, "all")) + " |")
    return head + "\n" + "\n".join(rows)


def _history(events: list[dict]) -> str:
    """What changed along the way (parts grown or started afresh): a resumed model has a past worth reading."""
    if not events:
        return ""
    return "\nAlong the way:\n" + "\n".join(f"- step {e['step']:,}: {e['event']}" for e in events) + "\n"


def render_card(training: dict, evaluation: dict) -> str:
    minutes = training["train_seconds"] / 60
    timing = evaluation.get("seconds_per_image", {})
    unseen = ", ".join(f"{c} {s}" for c, s in sorted(UNSEEN_PAIRS))
    return f"""# shapes: the model that ships with imagine-bot

A small text-to-image model trained on this project's own procedural world, on a CPU, by its own recipe
(`python -m models.shapes.train`). It is a stock diffusers `StableDiffusionPipeline` folder: load it with
`DiffusionPipeline.from_pretrained(folder)`, offline.

## The world
- Shapes: {", ".join(SHAPES)}. Colours: {", ".join(COLORS)}. Backgrounds: {", ".join(BACKGROUNDS)}.
- Sizes: {", ".join(f"{k} ({'/'.join(v)})" for k, v in SIZE_WORDS.items())}.
  Positions: {", ".join(POSITION_WORDS)}.
- Drawn with Pillow at {SIZE * 4}x{SIZE * 4} and box-filtered to {SIZE}x{SIZE} (anti-aliased); the native size is
  {SIZE}x{SIZE}, shown larger by the bot (Lanczos).
- Captions come in several phrasings ("a big red circle on the left on a blue background", "red circle, left, blue
  background", "blue background with a red circle at the left"); size, position or background are sometimes left
  out, so short prompts work too. Words the model does not know are dropped by its tokenizer.
- Never shown in training: the colour-shape pairs {unseen}, and the exact held-out scenes below.

## The parts
- VAE: one level, no downsampling (a {SIZE}x{SIZE} picture is a {SIZE}x{SIZE}x4 latent): the UNet works at the
  picture's own resolution. Trained first, then frozen.
- Text: a word-level tokenizer and a 2-layer CLIP text transformer (width 128) trained from scratch with the UNet,
  kept honest by a training-only probe that names each caption's attributes from its token states
  (`models/shapes/attributes.py`, weight {training.get("probe_weight", "-")}).
- UNet: `UNet2DConditionModel` (subclassed in `models/shapes/unet.py`), channels (32, 64, 64), cross-attention at
  8x8, pooled text added to the time embedding (`addition_embed_type="text"`), and two extra inputs: the pixel's
  coordinates and a coarse text layout (every token paints 16 maps on an 8x8 grid; the maps add up). v-prediction,
  cosine schedule, {training.get("high_noise_share", 0):.0%} of timesteps drawn again from the noisiest tenth;
  sampled with DPM-Solver++.

## Training budget
{training["steps"]:,} steps of batch {training["batch"]} ({training["samples"]:,} samples), {minutes:.0f} minutes of
training on a shared 2-core CPU (bf16 autocast: {training["bf16_autocast"]}), AdamW lr {training["lr"]}, EMA of the
weights, seed {training["seed"]}.
{_history(training.get("history", []))}
## Evaluation
`python -m models.shapes.evaluate`: {evaluation["prompts"]["seen"]} held-out prompts of seen colour-shape pairs and
{evaluation["prompts"]["unseen"]} of unseen pairs, seeds fixed, {evaluation["steps"]} steps, guidance
{evaluation["guidance"]}, each picture read back by the deterministic analyzer (`models/shapes/analyzer.py`, which
reads real renders of the world 100% right).

{_table(evaluation)}

Time per image at {evaluation["steps"]} steps on this CPU: {timing.get("batch_1", "?")} s at batch 1,
{timing.get("batch_4", "?")} s at batch 4.

![samples](samples.png)

The first 40 held-out prompts, in order, one seed each.
"""


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m models.shapes.card", description=__doc__.split("\n")[0])
    p.add_argument("folder", type=Path, nargs="?", default=DEFAULT_FOLDER)
    folder = p.parse_args(argv).folder
    training = json.loads((folder / "training.json").read_text())
    evaluation = json.loads((folder / "evaluation.json").read_text())
    (folder / "README.md").write_text(render_card(training, evaluation))


if __name__ == "__main__":
    main()
