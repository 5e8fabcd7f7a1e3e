"""The recipe's settings (`python -m models.shapes.train --help`): every knob of a run, parsed once."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

from models.cpu import has_bf16

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "weights"
DEFAULT_STATE = HERE.parents[1] / ".data" / "shapes"
DESCRIPTION = "Train the shipped model (resumable; see models/shapes/train.py)."


@dataclass
class Options:
    steps: int
    minutes: float
    batch: int
    lr: float
    warmup: int
    seed: int
    scenes: int
    vae_steps: int
    caption_drop: float
    attribute_drop: float
    high_noise_share: float
    probe_weight: float
    reset_text: bool
    checkpoint_minutes: float
    export_minutes: float
    bf16: bool
    threads: int
    state: Path
    out: Path


def parse(argv: list[str] | None = None) -> Options:
    p = argparse.ArgumentParser(prog="python -m models.shapes.train", description=DESCRIPTION)
    p.add_argument("--steps", type=int, default=12000, help="train until this total step count")
    p.add_argument("--minutes", type=float, default=math.inf, help="stop after this many minutes of this run")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scenes", type=int, default=60000, help="pre-rendered training pictures")
    p.add_argument("--vae-steps", type=int, default=1500)
    p.add_argument("--caption-drop", type=float, default=0.1, help="share of empty prompts (for guidance)")
    p.add_argument("--attribute-drop", type=float, default=0.15, help="chance a caption leaves out an attribute")
    p.add_argument(
        "--high-noise-share", type=float, default=0.25, help="share of timesteps drawn from the noisiest tenth"
    )
    p.add_argument("--probe-weight", type=float, default=0.1, help="weight of the text encoder's attribute probe loss")
    p.add_argument(
        "--reset-text-encoder",
        dest="reset_text",
        action="store_true",
        help="start the text encoder afresh on resume (the UNet keeps its weights); see Trainer.reset_text_encoder",
    )
    p.add_argument("--checkpoint-minutes", type=float, default=5.0)
    p.add_argument("--export-minutes", type=float, default=15.0)
    p.add_argument("--no-bf16", dest="bf16", action="store_false", help="train in float32 only")
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch threads (0: torch's default); 1 keeps training steady on a machine shared with other work",
    )
    p.add_argument("--state", type=Path, default=DEFAULT_STATE, help="checkpoint folder (git-ignored)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="exported pipeline folder")
    a = p.parse_args(argv)
    bf16 = a.bf16 and has_bf16()
    return Options(
        a.steps,
        a.minutes,
        a.batch,
        a.lr,
        a.warmup,
        a.seed,
        a.scenes,
        a.vae_steps,
        a.caption_drop,
        a.attribute_drop,
        a.high_noise_share,
        a.probe_weight,
        a.reset_text,
        a.checkpoint_minutes,
        a.export_minutes,
        bf16,
        a.threads,
        a.state,
        a.out,
    )
