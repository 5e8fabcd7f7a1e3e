"""The clip model's parts and how they become one stock `TextToVideoSDPipeline` folder.

- VAE: the image model's, frozen (one level, no downsampling: a 32x32 frame is a 32x32x4 latent), so a clip is
  eight of the image model's latents stacked in time and its frames decode exactly like its pictures.
- Text: the image model's word-level tokenizer with the motion words appended (old words keep their ids) and its
  2-layer CLIP text encoder, its embedding table grown by the new words; trained on with the UNet.
- UNet: `UNet3DConditionModel` with the image UNet's spatial shape (channels (32, 64, 64), one layer a block,
  cross-attention at 8x8 with 4 heads of 16), and like the image UNet it reads coordinates and a text layout beside
  the latents, here x, y and t and a layout for every frame (`models.clips.unet`: without them nothing in a video
  UNet knows which frame comes first, so "moving left" and "moving right" look alike). The image UNet's weights
  load into its spatial layers, first convolution and layout, and its temporal layers (a temporal convolution after
  every ResNet, temporal attention at 8x8 and at the input) start as the identity: training begins from a model
  that already draws every frame as the image model would and only has to learn to move it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDPMScheduler, TextToVideoSDPipeline, UNet3DConditionModel
from diffusers.models.transformers.transformer_temporal import TransformerTemporalModel
from transformers import CLIPTextModel, PreTrainedTokenizerFast

from models.shapes import architecture as image
from models.shapes.tokenizer import build_tokenizer
from models.shapes.world import SIZE

from .captions import vocabulary
from .unet import COORD_CHANNELS, LAYOUT_CHANNELS, CoordUNet3DConditionModel

log = logging.getLogger(__name__)

SCHEDULE = image.SCHEDULE
TEXT_WIDTH = image.TEXT_WIDTH
LATENT_CHANNELS = image.LATENT_CHANNELS


def make_tokenizer() -> PreTrainedTokenizerFast:
    return build_tokenizer(vocabulary())


def make_text_encoder(vocab_size: int) -> CLIPTextModel:
    return image.make_text_encoder(vocab_size)


def make_vae() -> AutoencoderKL:
    return image.make_vae()


def make_unet(
    channels: tuple[int, ...] = (32, 64, 64), head_dim: int = 16, text_width: int = TEXT_WIDTH
) -> CoordUNet3DConditionModel:
    """Convolutions at 32 and 16, cross-attention at 8x8, coordinates and a text layout in; `head_dim` is the width
    of one attention head.

    (UNet3DConditionModel reads `attention_head_dim` as the width of a head, where UNet2DConditionModel's legacy
    reading is the number of heads: 16 here is the image UNet's 4 heads at 64 channels.)
    """
    levels = len(channels)
    return CoordUNet3DConditionModel(
        sample_size=SIZE,
        in_channels=LATENT_CHANNELS,
        out_channels=LATENT_CHANNELS,
        block_out_channels=channels,
        layers_per_block=1,
        down_block_types=("DownBlock3D",) * (levels - 1) + ("CrossAttnDownBlock3D",),
        up_block_types=("CrossAttnUpBlock3D",) + ("UpBlock3D",) * (levels - 1),
        cross_attention_dim=text_width,
        attention_head_dim=head_dim,
        norm_num_groups=8,
    )


def make_train_scheduler() -> DDPMScheduler:
    return image.make_train_scheduler()


def inflate(unet: CoordUNet3DConditionModel, source: dict[str, torch.Tensor]) -> list[str]:
    """Start the clip UNet as the image UNet (`source`, its state dict), frame by frame; returns the clip UNet's
    keys left as made (the temporal layers, the layout's frame codes, and whatever the image UNet lacks).

    - Spatial layers: copied. A 1x1 convolution and a linear layer hold the same numbers (the image UNet projects
      into attention with one, the clip UNet with the other), so those are reshaped.
    - First convolution: by input group (`conv_in_weight`): latents, x and y, and the layout keep the image
      UNet's weights; t and any group the image UNet lacks start at zero.
    - Layout: the image UNet's `TextLayout` weights are the clip layout's MLP as they are, and the frame codes
      start at zero, so every frame starts with the image model's layout for the prompt (and its learned sense of
      where "top left" is) and training only has to make the frames differ. Copying the layout rather than
      starting it afresh keeps the one part of the image model that maps words to places.
    - Pooled-text embedding (`add_embedding`): copied, like the spatial layers.
    - Temporal layers: their output projections start at zero (`zero_temporal_outputs`), so with the temporal
      convolutions (which diffusers already starts as the identity) the clip UNet draws each frame exactly as the
      image UNet would (a test checks it).
    """
    target = unet.state_dict()
    copied = {"conv_in.weight": conv_in_weight(source, target["conv_in.weight"])}
    for key, value in target.items():
        weight = source.get(key)
        if key in copied or weight is None:
            continue
        if weight.shape == value.shape or _squeezed(weight.shape) == _squeezed(value.shape):
            copied[key] = weight.reshape(value.shape)
    copied.update(zero_temporal_outputs(unet))
    unexpected = unet.load_state_dict(copied, strict=False).unexpected_keys
    assert not unexpected, unexpected
    left = [k for k in target if k not in copied]
    spatial_left = [k for k in left if not _starts_fresh(k)]
    if spatial_left:
        raise ValueError(f"the image UNet does not fit the clip UNet: {spatial_left[:3]}")
    return left


def conv_in_weight(source: dict[str, torch.Tensor], clip: torch.Tensor) -> torch.Tensor:
    """The clip UNet's first convolution from the image UNet's, one named input group at a time.

    The image UNet reads the latents, then x and y (`models.shapes.unet.coordinates`, if it has them), then its
    layout (if it has one, i.e. `layout.*` weights); the clip UNet reads the latents, x, y, t, then its layout
    (`models.clips.unet`). Each group the image UNet has keeps its weights; the rest start at zero, so they change
    nothing until training finds a use for them.
    """
    image = source["conv_in.weight"]
    has_layout = any(k.startswith("layout.") for k in source)
    layout = LAYOUT_CHANNELS if has_layout else 0
    coords = image.shape[1] - LATENT_CHANNELS - layout
    if coords not in (0, 2) or image.shape[0] != clip.shape[0] or image.shape[2:] != clip.shape[2:]:
        raise ValueError(f"the image UNet's first convolution does not fit the clip UNet's: {tuple(image.shape)}")
    weight = torch.zeros_like(clip)
    weight[:, :LATENT_CHANNELS] = image[:, :LATENT_CHANNELS]
    weight[:, LATENT_CHANNELS : LATENT_CHANNELS + coords] = image[:, LATENT_CHANNELS : LATENT_CHANNELS + coords]
    if has_layout:
        weight[:, LATENT_CHANNELS + COORD_CHANNELS :] = image[:, LATENT_CHANNELS + coords :]
    return weight


def zero_temporal_outputs(unet: UNet3DConditionModel) -> dict[str, torch.Tensor]:
    """Zeros for the output projection of every temporal attention, which makes it the identity (it adds its
    output to its input); diffusers starts them at random, which would blur a fresh clip UNet's frames together."""
    return {
        f"{name}.proj_out.{part}": torch.zeros_like(tensor)
        for name, module in unet.named_modules()
        if isinstance(module, TransformerTemporalModel)
        for part, tensor in module.proj_out.state_dict().items()
    }


def _squeezed(shape: torch.Size) -> tuple[int, ...]:
    return tuple(n for n in shape if n != 1)


def _starts_fresh(key: str) -> bool:
    """Parts of the clip UNet that the image UNet has no counterpart for, or may lack (an older image model)."""
    return "temp_" in key or key.startswith(("transformer_in.", "layout."))


def grow_text_encoder(encoder: CLIPTextModel, vocab_size: int, seed: int) -> CLIPTextModel:
    """The image model's text encoder with rows for new words: old ids keep their rows, new ones start near zero."""
    old = encoder.get_input_embeddings().weight.detach()
    if vocab_size < old.shape[0]:
        raise ValueError("the clip vocabulary must extend the image model's")
    encoder.resize_token_embeddings(vocab_size)
    with torch.no_grad():
        table = encoder.get_input_embeddings().weight
        table[: old.shape[0]] = old
        gen = torch.Generator().manual_seed(seed)
        table[old.shape[0] :] = torch.randn(vocab_size - old.shape[0], old.shape[1], generator=gen) * old.std()
    encoder.config.vocab_size = vocab_size
    return encoder


def assemble(vae: AutoencoderKL, text_encoder: CLIPTextModel, unet: UNet3DConditionModel) -> TextToVideoSDPipeline:
    return TextToVideoSDPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=make_tokenizer(),
        unet=unet,
        scheduler=image.make_sample_scheduler(),
    )


def save_folder(pipe: TextToVideoSDPipeline, folder: Path) -> None:
    """save_pretrained, then name the tokenizer by a class every transformers version can load."""
    pipe.save_pretrained(folder, safe_serialization=True)
    index_path = folder / "model_index.json"
    index = json.loads(index_path.read_text())
    index["tokenizer"] = ["transformers", "PreTrainedTokenizerFast"]
    index_path.write_text(json.dumps(index, indent=2) + "\n")
    config_path = folder / "tokenizer" / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_path.write_text(json.dumps(config, indent=2) + "\n")
