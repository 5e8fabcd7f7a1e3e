"""Stage 2 of the clip recipe (`models.clips.train`): teach the prompt's layout where the shape is in every frame,
before the video UNet trains.

The clip UNet starts as the image UNet on every frame (`architecture.inflate`), and the image UNet draws the shape
where its layout paints it. So "moving left" comes down to one small part: the layout (`unet.ClipLayout`), which
must paint the right-hand cells in the first frame and the left-hand ones in the last. Trained only inside the
whole video UNet, that part learned slowly: 1,100 steps of 8 clips on a CPU left direction at 28%, the layout's
frame codes getting a share of a gradient that mostly went to 3 million other weights.

Here the layout and the text encoder learn alone, through the frozen image UNet itself: every frame of a clip is
one picture for it, denoised with that frame's layout (`FrameLayout`). The image UNet reads the layout in the
language it learned it in, its frozen weights cannot drift to make up for a poor layout, and a step costs a 2D
UNet pass over the frames, without the video UNet's temporal layers or their weight gradients (0.6 s for 8 clips on
a 2-core EPYC, against 2.9-3.4 s for a video UNet step). Each frame gets its own noise level, half from the
noisiest tenth, where only the layout can say where the shape goes. With the layout's motion maps
(`unet.ClipLayout.motion`), 600 steps (6 minutes) took the image UNet's guess of where the shape is at t=999 to
the right direction in 32 of the 32 held-out moves (`moves_at_pure_noise`, which every run of this stage records).

What this stage trains becomes the clip UNet's layout and text encoder (live and EMA copies alike); it runs once,
at the start of a fresh run, and is kept in the state folder (`layout-warmup/`) so a resumed run skips it.
"""

from __future__ import annotations

import json
import logging
import random
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

from models import training
from models.shapes.architecture import LATENT_CHANNELS
from models.shapes.unet import CoordUNet2DConditionModel
from models.shapes.world import SIZE

from .captions import canonical
from .heldout import heldout_scenes
from .motion import read_clip
from .unet import ClipLayout
from .world import DIRECTIONS, ClipScene

if TYPE_CHECKING:  # the trainer holds the parts this stage trains; it imports this module, not the other way
    from .train import Trainer

log = logging.getLogger(__name__)

FOLDER = "layout-warmup"
REPORT = "report.json"
HIGH_NOISE_SHARE = 0.5
"""Frames drawn from the noisiest tenth: there the picture is noise and the layout is all the UNet has."""
WARMUP = 50
"""Steps of linear learning-rate warm-up."""


class FrameLayout(nn.Module):
    """A `ClipLayout` standing in for the image UNet's `TextLayout`: the UNet sees a clip's frames as a batch of
    pictures (clip by clip, frame by frame), each with its prompt, and gets every frame's own maps."""

    def __init__(self, layout: ClipLayout, frames: int) -> None:
        super().__init__()
        self.clip = layout
        self.frames = frames

    def forward(self, text: torch.Tensor, height: int, width: int) -> torch.Tensor:
        per_clip = text[:: self.frames]  # the prompt is repeated for each of a clip's frames
        maps = self.clip.paint(per_clip, self.frames, height, width)  # (clips, channels, frames, height, width)
        return maps.transpose(1, 2).flatten(0, 1)


def image_unet(init: Path) -> CoordUNet2DConditionModel:
    """The image model's UNet, frozen."""
    unet = CoordUNet2DConditionModel.from_pretrained(init / "unet")
    return unet.eval().requires_grad_(False)


def run(trainer: Trainer, init: Path, steps: int, lr: float, folder: Path) -> dict:
    """Train `trainer`'s clip layout and text encoder for `steps` steps through the image UNet in `init`, or load
    what an earlier run of this stage kept in `folder`; returns the stage's report for training.json."""
    if (folder / REPORT).is_file():
        _load(trainer, folder)
        return json.loads((folder / REPORT).read_text())
    report = _train(trainer, init, steps, lr)
    _save(trainer, folder, report)
    _sync_ema(trainer)
    return report


def _train(trainer: Trainer, init: Path, steps: int, lr: float) -> dict:
    unet = image_unet(init).to(trainer.device)
    unet.layout = FrameLayout(trainer.unet.layout, trainer.opts.frames)
    params = [*trainer.unet.layout.parameters(), *trainer.text_encoder.parameters(), *trainer.probe.parameters()]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    # Streams of its own: the UNet stage draws the same clips whether or not this stage ran.
    rng = random.Random(trainer.opts.seed + 7)
    gen = torch.Generator().manual_seed(trainer.opts.seed + 8)
    losses: list[float] = []
    started = time.perf_counter()
    for step in tqdm(range(steps), desc="layout"):
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / WARMUP)
        denoising, probe = _losses(trainer, unet, rng, gen)
        opt.zero_grad(set_to_none=True)
        (denoising + trainer.opts.probe_weight * probe).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(denoising.item())
        if (step + 1) % 50 == 0:
            log.info("layout step %d: loss %.4f", step + 1, statistics.mean(losses[-50:]))
    return {
        "steps": steps,
        "lr": lr,
        "high_noise_share": HIGH_NOISE_SHARE,
        "seconds": round(time.perf_counter() - started),
        "denoising_loss_last_50": round(statistics.mean(losses[-50:]), 5) if losses else None,
        "moves_at_pure_noise": moves_at_pure_noise(trainer, unet),
    }


@torch.no_grad()
def moves_at_pure_noise(trainer: Trainer, unet: CoordUNet2DConditionModel) -> dict[str, int]:
    """The stage's own measure: for every held-out move, the image UNet's guess of the clean frames from pure noise
    (the last timestep, one fixed seed), which only the layout can steer, read back by the motion reader. Returns
    how many of the moves it reads as the asked one."""
    scenes = [s for s in heldout_scenes() if s.motion in DIRECTIONS]
    frames, device = trainer.opts.frames, trainer.device
    text = trainer.text_encoder(trainer.tokenize([canonical(s) for s in scenes]).to(device))[0]
    noise = torch.randn(len(scenes) * frames, LATENT_CHANNELS, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    t = torch.full((noise.shape[0],), trainer.noise.config.num_train_timesteps - 1)
    noise, t = noise.to(device), t.to(device)
    v = unet(noise, t, encoder_hidden_states=text.repeat_interleave(frames, dim=0)).sample
    alpha = trainer.alphas[t].view(-1, 1, 1, 1)
    x0 = alpha.sqrt() * noise - (1 - alpha).sqrt() * v
    pixels = trainer.vae.decode(x0 / trainer.vae.config.scaling_factor).sample
    pixels = ((pixels.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    clips = [[Image.fromarray(p) for p in pixels[i * frames : (i + 1) * frames]] for i in range(len(scenes))]
    return {"right": moves_read_right(scenes, clips), "of": len(scenes)}


def moves_read_right(scenes: list[ClipScene], clips: list[list[Image.Image]]) -> int:
    return sum(read_clip(clip).motion == scene.motion for scene, clip in zip(scenes, clips, strict=True))


def _losses(
    trainer: Trainer, unet: CoordUNet2DConditionModel, rng: random.Random, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch of clips as pictures, each frame at its own noise level: the denoising loss and the text probe's."""
    opts, device = trainer.opts, trainer.device
    ids, labels, clips = trainer.batch(rng)
    frames = clips.shape[2]
    x0 = clips.transpose(1, 2).flatten(0, 1)  # (clips * frames, channels, height, width), clip by clip
    t = training.noisy_heavy_timesteps(trainer.noise.config.num_train_timesteps, x0.shape[0], HIGH_NOISE_SHARE, gen)
    noise = torch.randn(x0.shape, generator=gen).to(device)
    noisy, target = training.v_prediction(x0, noise, trainer.alphas, t.to(device))
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=opts.bf16):
        text = trainer.text_encoder(ids.to(device))[0]
        pred = unet(noisy, t.to(device), encoder_hidden_states=text.repeat_interleave(frames, dim=0)).sample
    probe = trainer.probe.loss(text, {k: v.to(device) for k, v in labels.items()})
    return F.mse_loss(pred.float(), target), probe


def _save(trainer: Trainer, folder: Path, report: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, module in _parts(trainer).items():
        save_file({k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}, folder / name)
    (folder / REPORT).write_text(json.dumps(report, indent=2) + "\n")


def _load(trainer: Trainer, folder: Path) -> None:
    for name, module in _parts(trainer).items():
        module.load_state_dict(load_file(folder / name))
    _sync_ema(trainer)


def _parts(trainer: Trainer) -> dict[str, nn.Module]:
    return {"layout.safetensors": trainer.unet.layout, "text.safetensors": trainer.text_encoder}


def _sync_ema(trainer: Trainer) -> None:
    trainer.ema_unet.layout.load_state_dict(trainer.unet.layout.state_dict())
    trainer.ema_text.load_state_dict(trainer.text_encoder.state_dict())


def main(argv: list[str] | None = None) -> None:
    """`python -m models.clips.warmup --state FOLDER`: `moves_at_pure_noise` for the warm-up a run kept there."""
    import argparse

    from .train import Trainer, parse

    p = argparse.ArgumentParser(prog="python -m models.clips.warmup", description=main.__doc__)
    p.add_argument("--state", type=Path, required=True, help="a clip run's state folder")
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    trainer = Trainer(parse(["--state", str(a.state), "--size", "32"]))
    if trainer.opts.init is None or not (a.state / FOLDER / REPORT).is_file():
        raise SystemExit(f"no layout warm-up kept in {a.state}")
    _load(trainer, a.state / FOLDER)
    unet = image_unet(trainer.opts.init)
    unet.layout = FrameLayout(trainer.unet.layout, trainer.opts.frames)
    print(json.dumps(moves_at_pure_noise(trainer, unet.to(trainer.device))))


if __name__ == "__main__":
    main()
