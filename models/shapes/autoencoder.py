"""The shipped model's pictures and its frozen autoencoder: stage 1 of the recipe (`models.shapes.train`).

The training set is rendered once from the world (never one of the evaluator's scenes), and a one-level VAE learns
to be (nearly) the identity on it; it is then frozen, since every latent the UNet learns from depends on it. The
clip model (`models.clips.train`) trains its own the same way when it has no image model to start from.
"""

from __future__ import annotations

import random

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL
from tqdm import tqdm

from . import architecture
from .heldout import is_heldout
from .world import SIZE, random_scene, render


def render_dataset(count: int, seed: int) -> tuple[torch.Tensor, list]:
    """`count` scenes (none of the evaluator's) as a uint8 tensor (N, 3, H, W), and the scenes themselves."""
    rng = random.Random(seed)
    scenes, pixels = [], np.empty((count, SIZE, SIZE, 3), dtype=np.uint8)
    for i in tqdm(range(count), desc="render", leave=False):
        scene = random_scene(rng)
        while is_heldout(scene):
            scene = random_scene(rng)
        scenes.append(scene)
        pixels[i] = np.asarray(render(scene, rng))
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous(), scenes


def to_unit(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 pixels to the [-1, 1] the VAE reads."""
    return pixels.float() / 127.5 - 1.0


def train_vae(pixels: torch.Tensor, steps: int, seed: int) -> AutoencoderKL:
    """Reconstruction with a whisper of KL: the latent is a lossless re-coding of the pixels, not a compression."""
    torch.manual_seed(seed)
    vae = architecture.make_vae()
    opt = torch.optim.AdamW(vae.parameters(), lr=2e-3, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps, pct_start=0.05)
    gen = torch.Generator().manual_seed(seed)
    bar = tqdm(range(steps), desc="vae")
    for _ in bar:
        x = to_unit(pixels[torch.randint(0, len(pixels), (64,), generator=gen)])
        posterior = vae.encode(x).latent_dist
        recon = vae.decode(posterior.sample(generator=gen)).sample
        mse = F.mse_loss(recon, x)
        loss = mse + 1e-6 * posterior.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        bar.set_postfix(mse=f"{mse.item():.5f}")
    vae.eval().requires_grad_(False)
    latents = encode(vae, pixels[:2048])
    vae.register_to_config(scaling_factor=float(1.0 / latents.std()))
    return vae


@torch.no_grad()
def encode(vae: AutoencoderKL, pixels: torch.Tensor, batch: int = 1024) -> torch.Tensor:
    """Posterior means, unscaled."""
    out = [vae.encode(to_unit(pixels[i : i + batch])).latent_dist.mean for i in range(0, len(pixels), batch)]
    return torch.cat(out)
