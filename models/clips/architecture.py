"""The clip model's parts and how they become one stock `TextToVideoSDPipeline` folder.

- VAE: the image model's, frozen (one level, no downsampling: a 32x32 frame is a 32x32x4 latent), so a clip is
  eight of the image model's latents stacked in time and its frames decode exactly like its pictures.
- Text: the image model's word-level tokenizer with the motion words appended (old words keep their ids) and its
  2-layer CLIP text encoder, its embedding table grown by the new words; trained on with the UNet.
- UNet: `UNet3DConditionModel` with the image UNet's spatial shape (channels (32, 64, 64), one layer a block,
  cross-attention at 8x8 with 4 heads of 16), so the image UNet's weights load into its spatial layers and its
  temporal layers (a temporal convolution after every ResNet, temporal attention at 8x8 and at the input) start as
  the identity: training begins from a model that already draws every frame and only has to learn to move it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDPMScheduler, TextToVideoSDPipeline, UNet3DConditionModel
from transformers import CLIPTextModel, PreTrainedTokenizerFast

from models.shapes import architecture as image
from models.shapes.tokenizer import build_tokenizer
from models.shapes.world import SIZE

from .captions import vocabulary

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
) -> UNet3DConditionModel:
    """Convolutions at 32 and 16, cross-attention at 8x8; `head_dim` is the width of one attention head.

    (UNet3DConditionModel reads `attention_head_dim` as the width of a head, where UNet2DConditionModel's legacy
    reading is the number of heads: 16 here is the image UNet's 4 heads at 64 channels.)
    """
    levels = len(channels)
    return UNet3DConditionModel(
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


def inflate(unet: UNet3DConditionModel, source: dict[str, torch.Tensor]) -> list[str]:
    """Copy the image UNet's weights (`source`, its state dict) into the clip UNet's spatial layers; returns the
    clip UNet's keys left as made (the temporal ones).

    A 1x1 convolution and a linear layer hold the same numbers (the image UNet projects into attention with one,
    the clip UNet with the other), so those are reshaped. The image UNet's first convolution also reads two
    coordinate channels (`models.shapes.unet`), which a stock UNet3DConditionModel has no place for: its weights for
    the latent channels are kept, the coordinates' dropped. Its pooled-text embedding has no place either and is
    left out; cross-attention carries the text.
    """
    target = unet.state_dict()
    copied = {}
    for key, value in target.items():
        weight = source.get(key)
        if weight is None:
            continue
        if (
            weight.ndim == 4
            and value.ndim == 4
            and weight.shape[1] > value.shape[1]
            and weight.shape[2:] == value.shape[2:]
        ):
            weight = weight[:, : value.shape[1]]  # extra input channels (coordinates): dropped
        if weight.numel() == value.numel():
            copied[key] = weight.reshape(value.shape)
    unet.load_state_dict(copied, strict=False)
    left = [k for k in target if k not in copied]
    spatial_left = [k for k in left if "temp_" not in k and not k.startswith("transformer_in.")]
    if spatial_left:
        raise ValueError(f"the image UNet does not fit the clip UNet: {spatial_left[:3]}")
    return left


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
