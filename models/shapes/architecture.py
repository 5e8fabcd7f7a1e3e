"""The parts of the shipped model and how they become one stock `StableDiffusionPipeline` folder.

Pixel-sized latents: the VAE does not downsample (a 32x32 image is a 32x32x4 latent), so the UNet works at the
image's own resolution, which a small model on a CPU learns far faster than a compressed latent space, while
the folder stays a plain Stable Diffusion pipeline that diffusers loads, swaps samplers on and runs img2img with.
"""

from __future__ import annotations

import json
from pathlib import Path

from diffusers import (
    AutoencoderKL,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    StableDiffusionPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, PreTrainedTokenizerFast

from .captions import vocabulary
from .tokenizer import MAX_LENGTH, SPECIAL, build_tokenizer
from .unet import CoordUNet2DConditionModel
from .world import SIZE

TEXT_WIDTH = 128
LATENT_CHANNELS = 4
SCHEDULE = {
    "num_train_timesteps": 1000,
    "beta_schedule": "squaredcos_cap_v2",
    "prediction_type": "v_prediction",
    "steps_offset": 1,
}


def make_tokenizer() -> PreTrainedTokenizerFast:
    return build_tokenizer(vocabulary())


def make_vae() -> AutoencoderKL:
    """A one-level autoencoder: no downsampling, no attention, about 0.2M parameters."""
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",),
        up_block_types=("UpDecoderBlock2D",),
        block_out_channels=(32,),
        layers_per_block=1,
        latent_channels=LATENT_CHANNELS,
        norm_num_groups=8,
        sample_size=SIZE,
        mid_block_add_attention=False,
    )


def make_text_encoder(vocab_size: int) -> CLIPTextModel:
    """A small CLIP text transformer trained from scratch with the UNet."""
    config = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=TEXT_WIDTH,
        intermediate_size=TEXT_WIDTH * 4,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=MAX_LENGTH,
        pad_token_id=SPECIAL.index("[PAD]"),
        bos_token_id=SPECIAL.index("[BOS]"),
        eos_token_id=SPECIAL.index("[EOS]"),
        projection_dim=TEXT_WIDTH,
    )
    return CLIPTextModel(config)


def make_unet(
    channels: int = LATENT_CHANNELS, blocks: tuple[int, ...] = (32, 64, 64)
) -> CoordUNet2DConditionModel:
    """Convolutions at 32 and 16, cross-attention at 8x8, pooled text added to the time embedding, coordinates in.

    `channels` and `blocks` let the everyday probe use the same UNet on RGB pixels with wider blocks."""
    return CoordUNet2DConditionModel(
        sample_size=SIZE,
        in_channels=channels,
        out_channels=channels,
        block_out_channels=blocks,
        layers_per_block=1,
        down_block_types=("DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        cross_attention_dim=TEXT_WIDTH,
        attention_head_dim=4,  # diffusers' legacy name: this is the number of heads
        norm_num_groups=8,
        addition_embed_type="text",
        addition_embed_type_num_heads=4,
    )


def make_train_scheduler() -> DDPMScheduler:
    return DDPMScheduler(**SCHEDULE)


def make_sample_scheduler() -> DPMSolverMultistepScheduler:
    return DPMSolverMultistepScheduler(**SCHEDULE, algorithm_type="dpmsolver++", solver_order=2)


def assemble(vae: AutoencoderKL, text_encoder: CLIPTextModel, unet: UNet2DConditionModel) -> StableDiffusionPipeline:
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=make_tokenizer(),
        unet=unet,
        scheduler=make_sample_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def save_folder(pipe: StableDiffusionPipeline, folder: Path) -> None:
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
