"""Tiny random-weight pipelines of every family, built from small configs and saved like an owner's models.

Nothing is downloaded: tokenizers are character-level vocabularies written here (a CLIP BPE with no merges, a T5
unigram), every model is a real diffusers/transformers class at toy sizes, and each pipeline is saved with
`save_pretrained` so the registry and loader read it exactly as they read a real model folder. Also: a tiny SD
checkpoint converted to the original single-file layout, a tiny LoRA trained by nobody (random, non-zero), and a
safety checker rigged to flag everything (so the NSFW policy can be seen to act).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

SIZE = 32


# --- Tokenizers and text encoders ---


def clip_tokenizer(folder: Path) -> tuple[Any, int]:
    from transformers import CLIPTokenizer

    from models.tiny import _write_tokenizer_files

    size = _write_tokenizer_files(folder)
    tokenizer = CLIPTokenizer(vocab=str(folder / "vocab.json"), merges=str(folder / "merges.txt"), model_max_length=77)
    return tokenizer, size


def clip_text(vocab: int, hidden: int = 32, projection: bool = False) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_attention_heads=4,
        num_hidden_layers=2,
        max_position_embeddings=77,
        projection_dim=32,
        bos_token_id=vocab - 2,
        eos_token_id=vocab - 1,
        pad_token_id=vocab - 1,
    )
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config)


def t5_tokenizer() -> Any:
    """A character-level T5 (unigram) tokenizer: printable ASCII, with and without the word-start mark."""
    from transformers import T5Tokenizer

    chars = [chr(c) for c in range(33, 127)]
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    vocab += [(c, -3.0) for c in chars] + [("▁" + c, -2.5) for c in chars]
    return T5Tokenizer(vocab=vocab, extra_ids=0)


def t5_text(tokenizer: Any, width: int = 32) -> Any:
    from transformers import T5Config, T5EncoderModel

    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=width,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
    )
    return T5EncoderModel(config)


def sd_vae(**overrides: Any) -> Any:
    """One block: no downsampling, so latents are at pixel size (like the shipped model's VAE)."""
    from diffusers import AutoencoderKL

    config: dict[str, Any] = dict(
        in_channels=3,
        out_channels=3,
        block_out_channels=(16,),
        down_block_types=("DownEncoderBlock2D",),
        up_block_types=("UpDecoderBlock2D",),
        latent_channels=4,
        norm_num_groups=8,
        sample_size=SIZE,
    )
    config.update(overrides)
    return AutoencoderKL(**config)


def sd_unet(**overrides: Any) -> Any:
    from diffusers import UNet2DConditionModel

    config: dict[str, Any] = dict(
        sample_size=SIZE,
        in_channels=4,
        out_channels=4,
        block_out_channels=(16, 32),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=8,
    )
    config.update(overrides)
    return UNet2DConditionModel(**config)


def safety_checker(flag_everything: bool = True) -> tuple[Any, Any]:
    """A tiny StableDiffusionSafetyChecker and its image processor; its thresholds flag every image (or none)."""
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig, CLIPImageProcessor

    config = CLIPConfig(
        text_config=dict(hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2),
        vision_config=dict(
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            image_size=SIZE,
            patch_size=8,
        ),
        projection_dim=32,
    )
    checker = StableDiffusionSafetyChecker(config)
    # A concept is flagged when cosine - threshold > 0: a threshold of -2 is always below, of +2 never.
    checker.concept_embeds_weights.data.fill_(-2.0 if flag_everything else 2.0)
    checker.special_care_embeds_weights.data.fill_(2.0)
    processor = CLIPImageProcessor(size={"shortest_edge": SIZE}, crop_size={"height": SIZE, "width": SIZE})
    return checker, processor


# --- One builder per family ---


def sd15(work: Path) -> Any:
    from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline

    tokenizer, vocab = clip_tokenizer(work / "tok")
    checker, processor = safety_checker()
    return StableDiffusionPipeline(
        vae=sd_vae(),
        text_encoder=clip_text(vocab),
        tokenizer=tokenizer,
        unet=sd_unet(),
        scheduler=DPMSolverMultistepScheduler(beta_schedule="scaled_linear", steps_offset=1),
        safety_checker=checker,
        feature_extractor=processor,
        requires_safety_checker=True,
    )


def sd2(work: Path) -> Any:
    """SD 2.x: the same pipeline class, linear projections and v-prediction (the 768-v models)."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    tokenizer, vocab = clip_tokenizer(work / "tok")
    return StableDiffusionPipeline(
        vae=sd_vae(),
        text_encoder=clip_text(vocab),
        tokenizer=tokenizer,
        unet=sd_unet(use_linear_projection=True, upcast_attention=True),
        scheduler=DDIMScheduler(
            beta_schedule="scaled_linear", prediction_type="v_prediction", clip_sample=False, steps_offset=1
        ),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def sdxl(work: Path) -> Any:
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline

    tokenizer, vocab = clip_tokenizer(work / "tok")
    unet = sd_unet(
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 1),
        projection_class_embeddings_input_dim=6 * 8 + 32,  # six size/crop numbers + the pooled text embedding
        cross_attention_dim=64,  # both text encoders' hidden states, concatenated
    )
    return StableDiffusionXLPipeline(
        vae=sd_vae(),
        text_encoder=clip_text(vocab),
        text_encoder_2=clip_text(vocab, projection=True),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        unet=unet,
        scheduler=EulerDiscreteScheduler(beta_schedule="scaled_linear", timestep_spacing="leading", steps_offset=1),
    )


def sd3(work: Path) -> Any:
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline

    tokenizer, vocab = clip_tokenizer(work / "tok")
    t5 = t5_tokenizer()
    transformer = SD3Transformer2DModel(
        sample_size=SIZE,
        patch_size=2,
        in_channels=4,
        num_layers=1,
        attention_head_dim=8,
        num_attention_heads=4,
        caption_projection_dim=32,
        joint_attention_dim=64,
        pooled_projection_dim=64,
        out_channels=4,
    )
    return StableDiffusion3Pipeline(
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=sd_vae(use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.0609, scaling_factor=1.5035),
        text_encoder=clip_text(vocab, projection=True),
        tokenizer=tokenizer,
        text_encoder_2=clip_text(vocab, projection=True),
        tokenizer_2=tokenizer,
        text_encoder_3=t5_text(t5, 64),
        tokenizer_3=t5,
    )


def flux(work: Path) -> Any:
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel

    tokenizer, vocab = clip_tokenizer(work / "tok")
    t5 = t5_tokenizer()
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=16,  # 4 latent channels, packed 2x2
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        pooled_projection_dim=32,
        axes_dims_rope=[4, 4, 8],
        guidance_embeds=True,  # FLUX.1-dev style distilled guidance
    )
    return FluxPipeline(
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=sd_vae(use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.0609, scaling_factor=1.5035),
        text_encoder=clip_text(vocab),
        tokenizer=tokenizer,
        text_encoder_2=t5_text(t5, 32),
        tokenizer_2=t5,
    )


def text_to_video_sd(work: Path) -> Any:
    from diffusers import DDIMScheduler, TextToVideoSDPipeline, UNet3DConditionModel

    tokenizer, vocab = clip_tokenizer(work / "tok")
    unet = UNet3DConditionModel(
        sample_size=SIZE,
        in_channels=4,
        out_channels=4,
        block_out_channels=(16, 32),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"),
        up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=8,
    )
    return TextToVideoSDPipeline(
        vae=sd_vae(),
        text_encoder=clip_text(vocab),
        tokenizer=tokenizer,
        unet=unet,
        scheduler=DDIMScheduler(beta_schedule="scaled_linear", clip_sample=False),
    )


def animatediff(work: Path) -> Any:
    from diffusers import AnimateDiffPipeline, DDIMScheduler, MotionAdapter

    tokenizer, vocab = clip_tokenizer(work / "tok")
    unet = sd_unet(
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D")
    )
    adapter = MotionAdapter(
        block_out_channels=(16, 32),
        motion_layers_per_block=1,
        motion_norm_num_groups=8,
        motion_num_attention_heads=2,
        motion_max_seq_length=32,
    )
    return AnimateDiffPipeline(
        vae=sd_vae(),
        text_encoder=clip_text(vocab),
        tokenizer=tokenizer,
        unet=unet,
        motion_adapter=adapter,
        scheduler=DDIMScheduler(beta_schedule="linear", clip_sample=False),
        feature_extractor=None,
        image_encoder=None,
    )


def wan(work: Path) -> Any:
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanPipeline, WanTransformer3DModel

    t5 = t5_tokenizer()
    vae = AutoencoderKLWan(
        base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
    )
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=16,
        out_channels=16,
        text_dim=32,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    )
    return WanPipeline(
        transformer=transformer,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        text_encoder=t5_text(t5, 32),
        tokenizer=t5,
        transformer_2=None,
    )


BUILDERS: dict[str, Callable[[Path], Any]] = {
    "sd15": sd15,
    "sd2": sd2,
    "sdxl": sdxl,
    "sd3": sd3,
    "flux": flux,
    "text-to-video-sd": text_to_video_sd,
    "animatediff": animatediff,
    "wan": wan,
}


def build(family: str, folder: Path, *, seed: int = 0) -> Path:
    """Build the tiny pipeline of `family` with fixed random weights and `save_pretrained` it into `folder`."""
    torch.manual_seed(seed)
    work = folder.parent / f".work-{folder.name}"
    pipe = BUILDERS[family](work)
    pipe.save_pretrained(folder)
    shutil.rmtree(work, ignore_errors=True)
    return folder


# --- A single-file checkpoint in the original (LDM) layout ---


def _unet_to_ldm(state: dict[str, torch.Tensor], layers: int) -> dict[str, torch.Tensor]:
    """Diffusers UNet names -> the original `model.diffusion_model.*` names (the inverse of diffusers' converter)."""
    fixed = {
        "time_embedding.linear_1": "time_embed.0",
        "time_embedding.linear_2": "time_embed.2",
        "conv_in": "input_blocks.0.0",
        "conv_norm_out": "out.0",
        "conv_out": "out.2",
        "add_embedding.linear_1": "label_emb.0.0",
        "add_embedding.linear_2": "label_emb.0.2",
    }
    resnet = {
        "norm1": "in_layers.0",
        "conv1": "in_layers.2",
        "time_emb_proj": "emb_layers.1",
        "norm2": "out_layers.0",
        "conv2": "out_layers.3",
        "conv_shortcut": "skip_connection",
    }
    up_attention = {k.split(".")[1] for k in state if k.startswith("up_blocks.") and ".attentions." in k}
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        parts = key.split(".")
        new = None
        for prefix, target in fixed.items():
            if key.startswith(prefix + "."):
                new = target + key[len(prefix) :]
        if new is None and parts[0] in ("down_blocks", "up_blocks", "mid_block"):
            if parts[0] == "mid_block":
                index = {"resnets.0": 0, "attentions.0": 1, "resnets.1": 2}[".".join(parts[1:3])]
                block, rest = f"middle_block.{index}", parts[3:]
                is_resnet = parts[1] == "resnets"
            else:
                i, what, j = int(parts[1]), parts[2], int(parts[3])
                rest = parts[4:]
                is_resnet = what == "resnets"
                if parts[0] == "down_blocks":
                    if what == "downsamplers":
                        block, rest, is_resnet = f"input_blocks.{(i + 1) * (layers + 1)}.0.op", parts[5:], False
                    else:
                        block = f"input_blocks.{i * (layers + 1) + j + 1}.{0 if is_resnet else 1}"
                elif what == "upsamplers":
                    slot = 2 if str(i) in up_attention else 1
                    block, rest, is_resnet = f"output_blocks.{i * (layers + 1) + layers}.{slot}.conv", parts[5:], False
                else:
                    block = f"output_blocks.{i * (layers + 1) + j}.{0 if is_resnet else 1}"
            name = ".".join(rest)
            if is_resnet:
                head, _, tail = name.partition(".")
                name = f"{resnet.get(head, head)}.{tail}"
            new = f"{block}.{name}"
        out["model.diffusion_model." + (new or key)] = value
    return out


def _vae_to_ldm(state: dict[str, torch.Tensor], blocks: int) -> dict[str, torch.Tensor]:
    attention = {
        "group_norm": "norm",
        "to_q": "q",
        "to_k": "k",
        "to_v": "v",
        "to_out.0": "proj_out",
    }
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        new = key.replace("conv_norm_out", "norm_out").replace("conv_shortcut", "nin_shortcut")
        for side in ("encoder", "decoder"):
            new = new.replace(f"{side}.mid_block.resnets.0", f"{side}.mid.block_1")
            new = new.replace(f"{side}.mid_block.resnets.1", f"{side}.mid.block_2")
            if f"{side}.mid_block.attentions.0." in new:
                tail = new.split(f"{side}.mid_block.attentions.0.")[1]
                for old, ldm in attention.items():
                    if tail.startswith(old + "."):
                        tail = ldm + tail[len(old) :]
                new = f"{side}.mid.attn_1.{tail}"
                if value.ndim == 2:  # linear -> 1x1 conv, as the original stores it
                    value = value[:, :, None, None]
        parts = new.split(".")
        if parts[0] == "encoder" and parts[1] == "down_blocks":
            if parts[3] == "downsamplers":
                new = f"encoder.down.{parts[2]}.downsample." + ".".join(parts[5:])
            else:
                new = f"encoder.down.{parts[2]}.block." + ".".join(parts[4:])
        if parts[0] == "decoder" and parts[1] == "up_blocks":
            block = blocks - 1 - int(parts[2])
            if parts[3] == "upsamplers":
                new = f"decoder.up.{block}.upsample." + ".".join(parts[5:])
            else:
                new = f"decoder.up.{block}.block." + ".".join(parts[4:])
        out["first_stage_model." + new] = value
    return out


def single_file(folder: Path, out: Path) -> Path:
    """The SD 1.x pipeline saved in `folder`, written as one original-layout `.safetensors` checkpoint."""
    import json

    from diffusers import AutoencoderKL, UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import CLIPTextModel

    unet = UNet2DConditionModel.from_pretrained(folder / "unet")
    vae = AutoencoderKL.from_pretrained(folder / "vae")
    text = CLIPTextModel.from_pretrained(folder / "text_encoder")
    layers = json.loads((folder / "unet" / "config.json").read_text())["layers_per_block"]
    state = _unet_to_ldm(unet.state_dict(), layers)
    state.update(_vae_to_ldm(vae.state_dict(), len(vae.config.block_out_channels)))
    for key, value in text.state_dict().items():
        name = key if key.startswith("text_model.") else f"text_model.{key}"
        state[f"cond_stage_model.transformer.{name}"] = value
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(out))
    return out


def configs_only(folder: Path, out: Path) -> Path:
    """A copy of a diffusers folder without its weights: what `from_single_file(config=...)` needs offline."""
    shutil.copytree(folder, out, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    return out


# --- A LoRA ---


def lora(folder: Path, out: Path, *, seed: int = 1) -> Path:
    """A rank-4 LoRA on the UNet's attention projections of the SD pipeline in `folder`, random and non-zero."""
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet = UNet2DConditionModel.from_pretrained(folder / "unet")
    torch.manual_seed(seed)
    unet.add_adapter(
        LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"], init_lora_weights=False)
    )
    StableDiffusionPipeline.save_lora_weights(
        out.parent, unet_lora_layers=get_peft_model_state_dict(unet), weight_name=out.name
    )
    return out
