"""The everyday probe's model: a pixel-space UNet at 32x32 reading MiniLM's token states through a projection.

The UNet is the shapes model's `CoordUNet2DConditionModel` (coordinate channels and a text layout painted from the
tokens, `models/shapes/unet.py`), working on the RGB pixels themselves (no VAE: at 32x32 the shapes model's VAE is
an identity anyway). MiniLM stays frozen; a learned projection (LayerNorm, Linear 384 -> TEXT_WIDTH) maps its token
states into the UNet's cross-attention width, and padding tokens are zeroed so the layout sums real words only.
"""

from __future__ import annotations

import torch
from diffusers import DDPMScheduler, DPMSolverMultistepScheduler
from torch import nn

from models.shapes.unet import CoordUNet2DConditionModel

from . import text
from .world import SIZE

TEXT_WIDTH = 128
CHANNELS = 3
BLOCKS = (32, 64, 128)
"""The earlier capacity probe's UNet (4.0M parameters), which learned 100 objects to 69% top-1 in 2,300 steps."""

SCHEDULE = {
    "num_train_timesteps": 1000,
    "beta_schedule": "squaredcos_cap_v2",
    "prediction_type": "v_prediction",
    "steps_offset": 1,
}


class Projection(nn.Module):
    """MiniLM token states (batch, tokens, 384) and mask -> cross-attention states (batch, tokens, TEXT_WIDTH)."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(text.WIDTH)
        self.linear = nn.Linear(text.WIDTH, TEXT_WIDTH)

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.linear(self.norm(states)) * mask.unsqueeze(-1).to(states.dtype)


def make_unet(blocks: tuple[int, ...] = BLOCKS) -> CoordUNet2DConditionModel:
    """Convolutions at 32 and 16, cross-attention at 8x8, pooled text added to the time embedding."""
    return CoordUNet2DConditionModel(
        sample_size=SIZE,
        in_channels=CHANNELS,
        out_channels=CHANNELS,
        block_out_channels=blocks,
        layers_per_block=1,
        down_block_types=("DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        cross_attention_dim=TEXT_WIDTH,
        attention_head_dim=4,  # diffusers' legacy name: the number of heads
        norm_num_groups=8,
        addition_embed_type="text",
        addition_embed_type_num_heads=4,
    )


def make_train_scheduler() -> DDPMScheduler:
    return DDPMScheduler(**SCHEDULE)


def make_sample_scheduler() -> DPMSolverMultistepScheduler:
    return DPMSolverMultistepScheduler(**SCHEDULE, algorithm_type="dpmsolver++", solver_order=2)
