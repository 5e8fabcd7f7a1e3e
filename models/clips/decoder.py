"""The clip pipeline's VAE: the image model's 32x32 latents, decoded as 64x64 frames (stage 2 of the clip recipe).

The clip UNet works in the image model's latent space (a 32x32 frame is a 32x32x4 latent), which is what lets it
start as the image UNet. To draw 64x64 frames without making every UNet call four times dearer, the exported
pipeline gets a two-level VAE instead: its decoder reads those same latents and draws the frame at twice the size,
trained on the world rendered at both sizes (one pose, drawn at 32 and at 64); its encoder maps a 64x64 frame back
to the latent the image VAE gives the 32x32 one, so both directions agree with the latent space the UNet knows. A
stock `AutoencoderKL` (vae_scale_factor 2), so `TextToVideoSDPipeline` draws 64x64 by default and any diffusers
code can load it.
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL
from tqdm import tqdm

from models.shapes.architecture import LATENT_CHANNELS
from models.shapes.autoencoder import to_unit
from models.shapes.world import SIZE

from .heldout import is_heldout
from .world import FRAMES, draw, poses, random_clip_scene

log = logging.getLogger(__name__)

SCALE = 2
REPORT = "decoder-report.json"
"""Output side over latent side."""

LATENT_NOISE = 0.05
"""Noise added to the latents the decoder learns from, as a share of their spread: the UNet's latents are never
exactly the image VAE's, and a decoder that saw only exact ones draws the gap as speckle."""


CHANNELS = (16, 32)
"""Channels per level. The shipped decoder (trained on a lent GPU) has (32, 64), four times the FLOPs of this."""


def make_decoder_vae(scaling_factor: float, channels: tuple[int, int] = CHANNELS) -> AutoencoderKL:
    """Two levels (one 2x step), no attention; `scaling_factor` is the image VAE's, since the latents are its."""
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        block_out_channels=channels,
        layers_per_block=1,
        latent_channels=LATENT_CHANNELS,
        norm_num_groups=8,
        sample_size=SIZE * SCALE,
        mid_block_add_attention=False,
        scaling_factor=scaling_factor,
    )


def frame_pairs(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` clip frames (never from a held-out scene) as uint8 (N, 3, 32, 32) and the same poses at 64x64."""
    rng = random.Random(seed)
    small = np.empty((count, SIZE, SIZE, 3), dtype=np.uint8)
    large = np.empty((count, SIZE * SCALE, SIZE * SCALE, 3), dtype=np.uint8)
    i = 0
    with tqdm(total=count, desc="render pairs", leave=False) as bar:
        while i < count:
            scene = random_clip_scene(rng)
            if is_heldout(scene):
                continue
            for pose in poses(scene, FRAMES, rng)[: count - i]:
                small[i] = np.asarray(draw(scene.shape, scene.background, pose, SIZE))
                large[i] = np.asarray(draw(scene.shape, scene.background, pose, SIZE * SCALE))
                i += 1
                bar.update(1)

    def as_tensor(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a).permute(0, 3, 1, 2).contiguous()

    return as_tensor(small), as_tensor(large)


@torch.no_grad()
def image_latents(vae: AutoencoderKL, pixels: torch.Tensor, device: torch.device, batch: int = 512) -> torch.Tensor:
    """The image VAE's posterior means (unscaled) for uint8 32x32 frames."""
    out = [vae.encode(to_unit(pixels[i : i + batch].to(device))).latent_dist.mean for i in range(0, len(pixels), batch)]
    return torch.cat(out)


def train_decoder(
    image_vae: AutoencoderKL,
    steps: int,
    seed: int,
    device: str = "cpu",
    batch: int = 16,
    channels: tuple[int, int] = CHANNELS,
) -> tuple[AutoencoderKL, dict]:
    """Train the 64x64 VAE against the frozen image VAE; returns it (frozen, on the CPU) and its held-out errors.

    Cost on a 2-core Xeon: a step of 16 frames at (16, 32) channels takes about 0.27 s (2,000 steps: 9 minutes).
    The shipped decoder, (32, 64) at 64 frames a step, is 16 times that (about 230 GFLOP a step): 70 s for 3,000
    steps on an H100, 4-5 s a step on a 2-core CPU.
    """
    torch.manual_seed(seed)
    dev = torch.device(device)
    count = min(4096, batch * max(steps, 1))  # no more frames than the steps will see
    small, large = frame_pairs(count, seed)
    test_small, test_large = frame_pairs(min(256, count), seed + 1)
    image_vae = image_vae.to(dev)
    z, test_z = image_latents(image_vae, small, dev), image_latents(image_vae, test_small, dev)
    large, test_large = large.to(dev), test_large.to(dev)
    vae = make_decoder_vae(image_vae.config.scaling_factor, channels).to(dev)
    opt = torch.optim.AdamW(vae.parameters(), lr=2e-3, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=max(steps, 1), pct_start=0.05)
    gen = torch.Generator().manual_seed(seed)
    spread = float(z.std())
    bar = tqdm(range(steps), desc="vae 64x64")
    for _ in bar:
        idx = torch.randint(0, len(z), (batch,), generator=gen)
        latents, target = z[idx.to(dev)], to_unit(large[idx.to(dev)])
        noisy = latents + LATENT_NOISE * spread * torch.randn(latents.shape, generator=gen).to(dev)
        decoded = F.mse_loss(vae.decode(noisy).sample, target)
        encoded = F.mse_loss(vae.encode(target).latent_dist.mean, latents)
        opt.zero_grad(set_to_none=True)
        (decoded + encoded).backward()
        opt.step()
        sched.step()
        bar.set_postfix(decode=f"{decoded.item():.5f}", encode=f"{encoded.item():.5f}")
    vae.eval().requires_grad_(False)
    report = held_out_errors(vae, image_vae, test_z, test_small.to(dev), test_large)
    log.info("64x64 VAE on held-out frames: %s", report)
    return vae.cpu(), report


@torch.no_grad()
def held_out_errors(
    vae: AutoencoderKL, image_vae: AutoencoderKL, z: torch.Tensor, small: torch.Tensor, large: torch.Tensor
) -> dict[str, float]:
    """PSNR (dB) of the 64x64 decode against the 64x64 render, beside the image VAE's decode upscaled (bicubic):
    what decoding at twice the size buys over stretching."""
    target = to_unit(large)
    ours = vae.decode(z).sample.clamp(-1, 1)
    stretched = F.interpolate(image_vae.decode(z).sample.clamp(-1, 1), scale_factor=SCALE, mode="bicubic")
    return {
        "psnr_decoded_64": round(_psnr(ours, target), 2),
        "psnr_image_vae_upscaled": round(_psnr(stretched.clamp(-1, 1), target), 2),
        "latent_mse_encoder": round(float(F.mse_loss(vae.encode(target).latent_dist.mean, z)), 6),
        "latent_spread": round(float(z.std()), 4),
    }


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(F.mse_loss(a, b))  # on [-1, 1]: a peak-to-peak range of 2
    return 10 * float(np.log10(4.0 / max(mse, 1e-12)))


def _report(folder: Path) -> dict:
    """The held-out errors kept beside a trained VAE, or in the exported pipeline's training.json."""
    for path, key in ((folder / REPORT, None), (folder.parent / "training.json", "decoder")):
        if path.is_file():
            data = json.loads(path.read_text())
            return dict(data.get(key, {}) if key else data)
    return {}


def ensure(
    folder: Path,
    image_vae: AutoencoderKL,
    steps: int,
    seed: int,
    device: str,
    exported: Path | None = None,
    batch: int = 16,
    channels: tuple[int, int] = CHANNELS,
) -> tuple[AutoencoderKL, dict]:
    """The 64x64 VAE kept in `folder` (the git-ignored state), else the one in an exported pipeline (`exported`, if
    it is the two-level kind), else a new one trained now and kept in `folder`."""
    for candidate in (folder, exported / "vae" if exported else None):
        if candidate is not None and (candidate / "config.json").is_file():
            vae = AutoencoderKL.from_pretrained(candidate)
            if len(vae.config.block_out_channels) == 2:
                return vae.eval().requires_grad_(False), _report(candidate)
    vae, report = train_decoder(image_vae, steps, seed, device, batch, channels)
    vae.save_pretrained(folder)
    (folder / REPORT).write_text(json.dumps(report, indent=2) + "\n")
    return vae, report
