"""The everyday probe's model: a pixel-space UNet at 32x32 reading MiniLM's token states through a projection.

The UNet is the shapes model's `CoordUNet2DConditionModel` (coordinate channels and a text layout painted from the
tokens, `models/shapes/unet.py`), working on the RGB pixels themselves (no VAE: at 32x32 the shapes model's VAE is
an identity anyway). MiniLM stays frozen; a learned projection (LayerNorm, Linear 384 -> TEXT_WIDTH) maps its token
states into the UNet's cross-attention width, and padding tokens are zeroed so the layout sums real words only.
"""

from __future__ import annotations

import torch
from torch import nn

from models.shapes import architecture as shapes
from models.shapes.unet import CoordUNet2DConditionModel

from . import text

TEXT_WIDTH = shapes.TEXT_WIDTH
CHANNELS = 3
BLOCKS = (32, 64, 128)
"""The earlier capacity probe's UNet (4.0M parameters), which learned 100 objects to 69% top-1 in 2,300 steps."""

SCHEDULE = shapes.SCHEDULE
make_train_scheduler = shapes.make_train_scheduler
make_sample_scheduler = shapes.make_sample_scheduler


class Projection(nn.Module):
    """MiniLM token states (batch, tokens, 384) and mask -> cross-attention states (batch, tokens, TEXT_WIDTH)."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(text.WIDTH)
        self.linear = nn.Linear(text.WIDTH, TEXT_WIDTH)

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.linear(self.norm(states)) * mask.unsqueeze(-1).to(states.dtype)


def make_unet(blocks: tuple[int, ...] = BLOCKS) -> CoordUNet2DConditionModel:
    """The shapes model's UNet on RGB pixels, with wider blocks."""
    return shapes.make_unet(channels=CHANNELS, blocks=blocks)
