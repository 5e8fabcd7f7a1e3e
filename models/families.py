"""The pipeline families a registry entry can name, and what each one needs and offers.

Torch-free (diffusers classes are named, not imported), so the registry, `imagine models check` and the bot's
advertised model list can reason about families without loading anything. `models.loader` turns the names into
classes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

log = logging.getLogger(__name__)

#: Samplers that work on any epsilon/v-prediction (DDPM-style) model; see `models.loader.SCHEDULERS`.
DDPM_SAMPLERS: tuple[str, ...] = ("euler", "euler_a", "dpm++_2m", "dpm++_2m_karras", "ddim")
#: Flow-matching models (SD3, FLUX, Wan) integrate with Euler on their own sigma shift; the others do not apply.
FLOW_SAMPLERS: tuple[str, ...] = ("euler",)


@dataclass(frozen=True)
class Family:
    """One family: its diffusers pipeline, what it makes, and which practices apply to it."""

    name: str
    label: str
    #: The text-to-X diffusers pipeline class (what `model_index.json` names as `_class_name`).
    pipeline: str
    kind: Literal["image", "clip"]
    samplers: tuple[str, ...]
    #: "unet" families take channels-last; both kinds take torch.compile.
    denoiser: Literal["unet", "transformer"]
    #: CUDA half precision: fp16 for the SD UNets, bf16 where fp16 overflows (FLUX, SD3, Wan).
    half: Literal["fp16", "bf16"] = "fp16"
    #: The pipeline ships a diffusers safety checker (Stable Diffusion 1.x/2.x).
    safety_checker: bool = False
    #: `AutoPipelineForImage2Image.from_pipe` can reuse the loaded components (variations, upscale).
    img2img: bool = False
    #: `from_single_file` is supported for one-file checkpoints of this family.
    single_file: bool = False
    #: The hub repository whose configs describe a single-file checkpoint of this family (README, check hints).
    reference: str = ""
    #: Key prefixes that a single-file checkpoint of this family has (a cheap, header-only family check).
    checkpoint_markers: tuple[str, ...] = ()
    #: Other pipeline classes accepted for this family (e.g. a v-prediction SD2 folder is still an SD pipeline).
    also: tuple[str, ...] = field(default_factory=tuple)
    #: Clips: frame counts must be `frame_step * k + 1` (temporal VAE compression); 1 means any count.
    frame_step: int = 1
    #: Clips: the keyword the pipeline takes for several outputs per prompt (None: one clip per call).
    per_prompt: str | None = "num_images_per_prompt"

    @property
    def classes(self) -> tuple[str, ...]:
        return (self.pipeline, *self.also)

    def fit_frames(self, frames: int) -> int:
        """The nearest frame count at or below `frames` that this family's VAE accepts (at least 1 + step)."""
        if self.frame_step <= 1:
            return max(1, frames)
        k = max(1, (frames - 1) // self.frame_step)
        return self.frame_step * k + 1


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            "sd15",
            "Stable Diffusion 1.x",
            "StableDiffusionPipeline",
            "image",
            DDPM_SAMPLERS,
            "unet",
            safety_checker=True,
            img2img=True,
            single_file=True,
            reference="stable-diffusion-v1-5/stable-diffusion-v1-5",
            checkpoint_markers=("cond_stage_model.transformer.", "model.diffusion_model.input_blocks."),
        ),
        Family(
            "sd2",
            "Stable Diffusion 2.x",
            "StableDiffusionPipeline",
            "image",
            DDPM_SAMPLERS,
            "unet",
            safety_checker=True,
            img2img=True,
            single_file=True,
            reference="stabilityai/stable-diffusion-2-1",
            checkpoint_markers=("cond_stage_model.model.", "model.diffusion_model.input_blocks."),
        ),
        Family(
            "sdxl",
            "Stable Diffusion XL",
            "StableDiffusionXLPipeline",
            "image",
            DDPM_SAMPLERS,
            "unet",
            img2img=True,
            single_file=True,
            reference="stabilityai/stable-diffusion-xl-base-1.0",
            checkpoint_markers=("conditioner.embedders.1.", "model.diffusion_model.input_blocks."),
        ),
        Family(
            "sd3",
            "Stable Diffusion 3",
            "StableDiffusion3Pipeline",
            "image",
            FLOW_SAMPLERS,
            "transformer",
            half="bf16",
            img2img=True,
            single_file=True,
            reference="stabilityai/stable-diffusion-3.5-medium",
            checkpoint_markers=("model.diffusion_model.joint_blocks.",),
        ),
        Family(
            "flux",
            "FLUX.1",
            "FluxPipeline",
            "image",
            FLOW_SAMPLERS,
            "transformer",
            half="bf16",
            img2img=True,
            single_file=True,
            reference="black-forest-labs/FLUX.1-schnell",
            checkpoint_markers=("double_blocks.",),
        ),
        Family(
            "text-to-video-sd",
            "ModelScope text-to-video",
            "TextToVideoSDPipeline",
            "clip",
            DDPM_SAMPLERS,
            "unet",
            reference="ali-vilab/text-to-video-ms-1.7b",
            per_prompt=None,
        ),
        Family(
            "animatediff",
            "AnimateDiff (an SD 1.5 model + a motion adapter)",
            "AnimateDiffPipeline",
            "clip",
            DDPM_SAMPLERS,
            "unet",
            reference="guoyww/animatediff-motion-adapter-v1-5-2",
            per_prompt="num_videos_per_prompt",
        ),
        Family(
            "wan",
            "Wan 2.1 text-to-video",
            "WanPipeline",
            "clip",
            FLOW_SAMPLERS,
            "transformer",
            half="bf16",
            reference="Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
            frame_step=4,
            per_prompt="num_videos_per_prompt",
        ),
    )
}

#: Older names still accepted in a registry file ("sd" was the spine's name for SD 1.x/2.x).
ALIASES: dict[str, str] = {"sd": "sd15", "sd1": "sd15", "sd21": "sd2", "modelscope": "text-to-video-sd"}

FamilyName = Literal["sd15", "sd2", "sdxl", "sd3", "flux", "text-to-video-sd", "animatediff", "wan"]


class UnknownFamily(LookupError):
    """A registry entry or a pipeline folder names no family this project runs."""


def get(name: str) -> Family:
    """The family called `name` (or one of its aliases)."""
    key = ALIASES.get(name, name)
    try:
        return FAMILIES[key]
    except KeyError:
        raise UnknownFamily(f"unknown family {name!r}; known: {', '.join(FAMILIES)}") from None


def of_pipeline(class_name: str) -> Family:
    """The family whose pipeline is `class_name` (SD 1.x and 2.x share a class: the first, sd15, is returned)."""
    for family in FAMILIES.values():
        if class_name in family.classes:
            return family
    raise UnknownFamily(f"pipeline {class_name!r} is not a family this project runs ({', '.join(FAMILIES)})")


def of_checkpoint(keys: set[str] | list[str]) -> Family | None:
    """The family a single-file checkpoint's tensor names point to, or None when they match none."""
    names = list(keys)
    # Most specific first: SDXL and SD2 checkpoints also carry the SD 1.x UNet prefix.
    for family_name in ("flux", "sd3", "sdxl", "sd2", "sd15"):
        family = FAMILIES[family_name]
        if all(any(k.startswith(marker) for k in names) for marker in family.checkpoint_markers):
            return family
    return None
