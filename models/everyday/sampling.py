"""Draw pictures from the everyday probe's weights: DPM-Solver++ with classifier-free guidance, fixed seeds.

The probe is not yet a pipeline folder (that comes with the recipe); this is the few lines of a text-to-image
pipeline it needs, so the evaluator can read back what a checkpoint draws.
"""

from __future__ import annotations

import torch
from PIL import Image

from . import text
from .architecture import CHANNELS, Projection, make_sample_scheduler
from .world import SIZE


@torch.no_grad()
def conditioning(projection: Projection, prompts: list[str]) -> torch.Tensor:
    states, mask = text.encode(prompts)
    return projection(states, mask)


@torch.no_grad()
def generate(
    unet: torch.nn.Module,
    projection: Projection,
    prompts: list[str],
    seeds: list[int],
    steps: int = 20,
    guidance: float = 4.0,
) -> list[Image.Image]:
    """One SIZE x SIZE picture per prompt, each from its own seeded noise."""
    scheduler = make_sample_scheduler()
    scheduler.set_timesteps(steps)
    cond = conditioning(projection, prompts)
    uncond = conditioning(projection, [""]).expand_as(cond)
    x = torch.stack([torch.randn(CHANNELS, SIZE, SIZE, generator=torch.Generator().manual_seed(s)) for s in seeds])
    x = x * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        both = unet(torch.cat([x, x]), t, encoder_hidden_states=torch.cat([uncond, cond])).sample
        u, c = both.chunk(2)
        x = scheduler.step(u + guidance * (c - u), t, x).prev_sample
    pixels = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return [Image.fromarray(p) for p in pixels]
