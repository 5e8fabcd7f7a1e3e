"""A video UNet that knows which frame it draws and where the prompt wants things in it: coordinates in space and
time, and a text layout per frame, join its input.

The image model (`models.shapes.unet`) showed that a stock UNet does not learn where a prompt puts things: without
a first-order path from the words to a place, the position words changed its prediction by nothing. A video UNet
has that problem in time as well. Its temporal attention has no frame positions, so it treats the frames as a set;
its temporal convolutions are the same at every frame, so what tells the first frame from the last is their zero
padding at the ends, a signal a few frames deep. "Moving left" must put the shape on the right in the first frame
and on the left in the last, starting from noise that looks the same forwards and backwards: a stock
`UNet3DConditionModel` (its temporal layers at their start) turns a time-reversed input into exactly the
time-reversed output, so nothing in it can say which end of the clip is the start (a test shows it).

So the input gets, beside the latents:
- three coordinate channels: x, y and t (the frame's place in the clip), each from -1 to 1;
- a layout: the image model's `TextLayout` (same layers, same shapes, so its weights carry over) with a learned code
  for each frame of an 8-frame grid added to its hidden layer, so the prompt's tokens paint `LAYOUT_CHANNELS` 8x8
  maps for every grid frame. They are stretched to the sample's frames linearly, the first and last frames pinned to
  the grid's ends (a move spans the clip, whatever its length), and to its height and width bilinearly, as in the
  image model. "moving left" can light up the right-hand cells early and the left-hand ones late, directly.
  Beside the frame codes, every token also paints `MOTION_TERMS` maps that are weighted by the frame's time: a
  velocity (times t, from -1 to 1) and a curvature (a bounce). The frame codes reach a frame's maps only through
  the layout's hidden layer, shared by every token, so "moving left" moving its painting needed a product of word
  and frame that training found slowly (the layout warm-up, `models.clips.warmup`, left the shape where the words
  "left" and "right" put it after 400 steps: 3 of 32 held-out moves right at t=999); with the velocity maps the
  word paints its own change, a first-order path (600 steps: 32 of 32). Both start at zero.

And like the image UNet (`addition_embed_type="text"`), the prompt pooled by attention is added to the time
embedding (`add_embedding`, `TextTimestepEmbedding`). A stock `UNet3DConditionModel` has no place for it, but the
image model leans on it: without it the image UNet's prediction moves by about half its size (44-68% relative at
t=500 to 999, on its weights at steps 3,675 and 3,923), so a clip UNet without it would start far from the model it
inherits.

With the frame codes and motion maps at zero every frame's layout is the image model's layout for the prompt, which
is how `models.clips.architecture.inflate` starts this UNet as the image UNet, frame by frame.

Everything else is the stock `UNet3DConditionModel`, and the config's `in_channels` stays the latent channel count,
so `TextToVideoSDPipeline` prepares latents for it as usual. The pipeline folder names this class by its module
path; diffusers loads it once this module has been imported (`models.loader` does that for this project's own
components, `models.clips.evaluate` imports it).
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.nn.functional as F
from diffusers import ModelMixin, UNet3DConditionModel
from diffusers.configuration_utils import register_to_config
from diffusers.models.embeddings import TextTimeEmbedding, TimestepEmbedding
from torch import nn

from models.prompt_cache import PromptCache
from models.shapes.unet import LAYOUT_CHANNELS, LAYOUT_GRID, LAYOUT_HIDDEN, layout_mlp

COORD_CHANNELS = 3
"""x, y, t."""

LAYOUT_FRAMES = 8
"""Frames of the layout's grid: the training clips' length, so at that length no frame is interpolated."""

MOTION_TERMS = 2
"""Maps a token paints for how its place changes over the clip: a velocity (weighted by the frame's time, -1 to 1)
and a curvature (the second Legendre polynomial of it: a bounce)."""

POOL_HEADS = 4
"""Heads of the attention that pools the prompt: the image UNet's (`addition_embed_type_num_heads`)."""

__all__ = [
    "LAYOUT_CHANNELS",
    "ClipLayout",
    "CoordUNet3DConditionModel",
    "ModelMixin",
    "TextTimestepEmbedding",
    "coordinates",
]
"""`ModelMixin` is listed on purpose: diffusers finds how to load a component by looking up its base classes by
name in the component's own module."""


class ClipLayout(nn.Module):
    """Prompt tokens -> `LAYOUT_CHANNELS` coarse maps for every frame (each token paints, the maps add up, as in
    the image model's `TextLayout`), stretched to the sample's frames and size.

    `mlp` has the image model's `TextLayout.mlp` layers under the same names (its weights load as they are);
    `frames` is one vector a grid frame, added to the hidden layer, so one small MLP paints every frame and the
    frame count costs `LAYOUT_HIDDEN` numbers a frame rather than a second output layer a frame. `motion` paints,
    from each token's hidden state without the frame codes, the maps that `basis` weights by the frame's time.
    """

    def __init__(self, text_width: int) -> None:
        super().__init__()
        self.mlp = layout_mlp(text_width)
        self.frames = nn.Parameter(torch.zeros(LAYOUT_FRAMES, LAYOUT_HIDDEN))
        self.motion = nn.Linear(LAYOUT_HIDDEN, MOTION_TERMS * LAYOUT_CHANNELS * LAYOUT_GRID * LAYOUT_GRID, bias=False)
        nn.init.zeros_(self.motion.weight)
        tau = torch.linspace(-1.0, 1.0, LAYOUT_FRAMES)
        self.register_buffer("basis", torch.stack([tau, 1.5 * tau**2 - 0.5], dim=1), persistent=False)
        self.cache = PromptCache()

    def grid(self, text: torch.Tensor) -> torch.Tensor:
        """(batch, LAYOUT_CHANNELS, LAYOUT_FRAMES, LAYOUT_GRID, LAYOUT_GRID): the maps before any stretching."""
        norm, text_in, act, out = self.mlp
        tokens = text_in(norm(text))  # (batch, tokens, hidden)
        hidden = tokens[:, None] + self.frames[:, None]  # (batch, frames, tokens, hidden)
        # The last layer is linear, so the tokens are summed before it: the sum of their maps, without a map a token.
        painted = F.linear(act(hidden).sum(dim=2), out.weight) + text.shape[1] * out.bias
        terms = self.motion(act(tokens).sum(dim=1)).unflatten(1, (MOTION_TERMS, -1))  # (batch, terms, maps)
        painted = painted + torch.einsum("fk,bkm->bfm", self.basis.to(terms.dtype), terms)
        maps = painted.view(-1, LAYOUT_FRAMES, LAYOUT_CHANNELS, LAYOUT_GRID, LAYOUT_GRID)
        return maps.transpose(1, 2)

    def forward(self, text: torch.Tensor, frames: int, height: int, width: int) -> torch.Tensor:
        """Painted once per prompt and sampling call (`models.prompt_cache`)."""
        return self.cache.get(self, text, (frames, height, width), lambda: self.paint(text, frames, height, width))

    def paint(self, text: torch.Tensor, frames: int, height: int, width: int) -> torch.Tensor:
        grid = self.grid(text)
        # Time first, with the ends pinned (align_corners); then space as the image model does it (a size-preserving
        # axis is left exactly as it is by either call).
        grid = F.interpolate(grid, size=(frames, LAYOUT_GRID, LAYOUT_GRID), mode="trilinear", align_corners=True)
        return F.interpolate(grid, size=(frames, height, width), mode="trilinear", align_corners=False)


class TextTimestepEmbedding(TimestepEmbedding):
    """The time embedding with the pooled prompt (`condition`, already embedded) added after it, where
    `UNet2DConditionModel` adds its `addition_embed_type="text"` embedding; same layers, same weight names."""

    def forward(self, sample: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        embedding = super().forward(sample)
        return embedding if condition is None else embedding + condition


class CoordUNet3DConditionModel(UNet3DConditionModel):
    """`UNet3DConditionModel` whose first convolution also sees x, y, the frame's place and the prompt's layout, and
    whose time embedding also carries the pooled prompt.

    Input channels, in order: the latents, x, y, t (`coordinates`), the layout (`ClipLayout`). The pooled prompt
    travels to the time embedding as `timestep_cond`, so that argument is this model's own.
    """

    @register_to_config
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.config.time_cond_proj_dim is not None:
            raise ValueError("time_cond_proj_dim: the pooled prompt is this model's timestep condition")
        conv = self.conv_in
        extra = COORD_CHANNELS + LAYOUT_CHANNELS
        self.conv_in = nn.Conv2d(conv.in_channels + extra, conv.out_channels, conv.kernel_size, padding=conv.padding)
        self.layout = ClipLayout(self.config.cross_attention_dim)
        width = self.time_embedding.linear_1.out_features
        self.time_embedding = TextTimestepEmbedding(self.time_embedding.linear_1.in_features, width, self.config.act_fn)
        self.add_embedding = TextTimeEmbedding(self.config.cross_attention_dim, width, num_heads=POOL_HEADS)

    def forward(self, sample: torch.Tensor, timestep: Any, encoder_hidden_states: torch.Tensor, **kwargs: Any) -> Any:
        """`sample` is (batch, channels, frames, height, width), as for the stock model."""
        if kwargs.get("timestep_cond") is not None:
            raise ValueError("timestep_cond: this model fills it with the pooled prompt")
        batch, _, frames, height, width = sample.shape
        layout = self.layout(encoder_hidden_states, frames, height, width).to(sample.dtype)
        pooled = self.add_embedding(encoder_hidden_states)
        if layout.shape[0] != batch:  # one prompt for many samples
            layout = layout.expand(batch, -1, -1, -1, -1)
            pooled = pooled.expand(batch, -1)
        inputs = torch.cat([sample, coordinates(sample), layout], dim=1)
        kwargs["timestep_cond"] = pooled
        return super().forward(inputs, timestep, encoder_hidden_states, **kwargs)


# diffusers reads a model's config keys from its __init__ signature: show it the parent's.
CoordUNet3DConditionModel.__init__.__signature__ = inspect.signature(UNet3DConditionModel.__init__)  # type: ignore[attr-defined]


def coordinates(sample: torch.Tensor) -> torch.Tensor:
    """(batch, 3, frames, height, width): x, y, then t, each from -1 at the first pixel (frame) to 1 at the last."""
    batch, _, frames, height, width = sample.shape
    axes = [torch.linspace(-1.0, 1.0, n, device=sample.device, dtype=sample.dtype) for n in (frames, height, width)]
    t, y, x = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([x, y, t]).unsqueeze(0).expand(batch, -1, -1, -1, -1)
