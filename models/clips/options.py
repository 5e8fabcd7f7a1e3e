"""The clip recipe's settings (`python -m models.clips.train --help`): every knob of a run, parsed once."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from models.cpu import has_bf16

from .world import FRAMES

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "weights"
DEFAULT_STATE = HERE.parents[1] / ".data" / "clips"
DEFAULT_INIT = HERE.parent / "shapes" / "weights"


@dataclass
class Options:
    steps: int
    minutes: float
    batch: int
    frames: int
    size: int
    lr: float
    warmup: int
    seed: int
    caption_drop: float
    background_drop: float
    high_noise_share: float
    probe_weight: float
    checkpoint_minutes: float
    export_minutes: float
    bf16: bool
    threads: int
    device: str
    state: Path
    out: Path
    init: Path | None
    channels: tuple[int, ...]
    head_dim: int
    vae_steps: int
    decoder_steps: int
    decoder_batch: int
    decoder_channels: tuple[int, int]
    layout_steps: int
    layout_lr: float
    bench: int


def parse(argv: list[str] | None = None) -> Options:
    p = argparse.ArgumentParser(prog="python -m models.clips.train", description="Train the shipped clip model.")
    p.add_argument("--steps", type=int, default=1100, help="train until this total step count")
    p.add_argument("--minutes", type=float, default=math.inf, help="stop after this many minutes of this run")
    p.add_argument("--batch", type=int, default=8, help="clips per step")
    p.add_argument("--frames", type=int, default=FRAMES, help="frames per training clip")
    p.add_argument(
        "--size", type=int, choices=(32, 64), default=64,
        help="frame side the exported pipeline draws: 64 trains a VAE that decodes the 32x32 latents at twice the size",
    )  # fmt: skip
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--caption-drop", type=float, default=0.1, help="share of empty prompts (for guidance)")
    p.add_argument("--background-drop", type=float, default=0.15, help="chance a caption leaves out the background")
    p.add_argument(
        "--high-noise-share", type=float, default=0.25, help="share of timesteps drawn from the noisiest tenth"
    )
    p.add_argument(
        "--probe-weight", type=float, default=0.1, help="weight of the text attribute probe's loss (motion included)"
    )
    p.add_argument("--checkpoint-minutes", type=float, default=5.0)
    p.add_argument("--export-minutes", type=float, default=15.0)
    p.add_argument("--no-bf16", dest="bf16", action="store_false", help="train in float32 only")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (auto: cuda when there is one)")
    p.add_argument("--state", type=Path, default=DEFAULT_STATE, help="checkpoint folder (git-ignored)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="exported pipeline folder")
    p.add_argument(
        "--init",
        default=str(DEFAULT_INIT),
        help="the image model's pipeline folder to start from, or 'none' to start from scratch",
    )
    p.add_argument("--channels", default="32,64,64", help="UNet channels per level (the image model's to --init)")
    p.add_argument("--head-dim", type=int, default=16, help="width of one attention head")
    p.add_argument("--vae-steps", type=int, default=1500, help="VAE training steps, only without --init")
    p.add_argument("--decoder-steps", type=int, default=2000, help="training steps of the 64x64 VAE (--size 64)")
    p.add_argument("--decoder-batch", type=int, default=16, help="frames per step of the 64x64 VAE")
    p.add_argument("--decoder-channels", default="16,32", help="the 64x64 VAE's channels at its two levels")
    p.add_argument(
        "--layout-steps", type=int, default=600,
        help="steps of the layout warm-up through the frozen image UNet before the video UNet (0: none)",
    )  # fmt: skip
    p.add_argument("--layout-lr", type=float, default=1e-3, help="learning rate of the layout warm-up")
    p.add_argument("--bench", type=int, default=0, help="time this many steps, print the cost per step, save nothing")
    a = p.parse_args(argv)
    init = None if a.init.lower() == "none" else Path(a.init)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if a.device == "auto" else a.device
    # bf16 autocast on a CPU with bf16 units; a GPU trains in float32 with TF32 matrix products (fast enough, and
    # the same numbers a CPU run would give to within TF32's rounding).
    bf16 = a.bf16 and device == "cpu" and has_bf16()
    return Options(
        a.steps, a.minutes, a.batch, a.frames, a.size, a.lr, a.warmup, a.seed, a.caption_drop, a.background_drop,
        a.high_noise_share, a.probe_weight, a.checkpoint_minutes, a.export_minutes, bf16, a.threads, device,
        a.state, a.out, init, tuple(int(c) for c in a.channels.split(",")), a.head_dim, a.vae_steps,
        a.decoder_steps, a.decoder_batch, _pair(a.decoder_channels), a.layout_steps, a.layout_lr, a.bench,
    )  # fmt: skip


def _pair(text: str) -> tuple[int, int]:
    first, second = (int(c) for c in text.split(","))
    return first, second
