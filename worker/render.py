"""One pipeline call for any family: the keyword arguments each family takes, and what comes back.

Families differ in small ways that would otherwise spread `if family == ...` through the job: clips take
`num_frames` and return frames, some name their batch argument `num_videos_per_prompt`, ModelScope's
text-to-video still reports steps through the old `callback`. This module hides that behind `call`, encodes a
clip as an animated GIF (Discord plays it inline), sizes an upscale, and runs the start-up warm-up.
"""

from __future__ import annotations

import inspect
import io
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from imagine.contract import Clip, JobSpec, Limits
from models.families import Family
from worker import encoding, rendezvous

log = logging.getLogger(__name__)

#: Callback signature of `callback_on_step_end`: (pipe, step index, timestep, tensors) -> tensors.
StepCallback = Callable[[Any, int, Any, dict[str, Any]], dict[str, Any]]


@dataclass
class Rendered:
    """The pictures of an image job, or a clip's frames (with `pictures` holding its first frame as a poster)."""

    pictures: list[Image.Image]
    frames: list[Image.Image] | None = None


def call(
    pipe: Any,
    family: Family | None,
    spec: JobSpec,
    *,
    generators: list[torch.Generator],
    on_step: StepCallback | None = None,
    **inputs: Any,
) -> Rendered:
    """Run `pipe` for a resolved `spec`; `inputs` are the size (`width`, `height`) or a source (`image`, `strength`)."""
    params = inspect.signature(pipe.__call__).parameters
    kind = family.kind if family is not None else "image"
    kwargs: dict[str, Any] = {
        "prompt": spec.prompt,
        "num_inference_steps": spec.steps,
        "guidance_scale": spec.guidance,
        "output_type": "pil",
        **inputs,
    }
    if "image" in inputs and "width" in params and "width" not in inputs:
        # FLUX's image-to-image takes a size too (its default is the model's, not the source image's).
        kwargs.update(width=spec.width, height=spec.height)
    if spec.negative_prompt and "negative_prompt" in params:
        kwargs["negative_prompt"] = spec.negative_prompt
    if kind == "clip":
        assert family is not None
        kwargs["num_frames"] = family.fit_frames(spec.frames or 16)
        kwargs["generator"] = generators[:1]
        if family.per_prompt is not None:
            kwargs[family.per_prompt] = 1
    else:
        kwargs["generator"] = generators
        kwargs["num_images_per_prompt"] = spec.count
    if on_step is not None:
        if "callback_on_step_end" in params:
            kwargs["callback_on_step_end"] = on_step
            kwargs["callback_on_step_end_tensor_inputs"] = ["latents"]
        elif "callback" in params:  # ModelScope text-to-video: the pre-0.22 step callback
            kwargs["callback"] = lambda i, t, latents: on_step(pipe, i, t, {"latents": latents})
            kwargs["callback_steps"] = 1
    # Image calls go through `worker.rendezvous` (merged with other waiting jobs' calls when they share a batch, under
    # the CPU speed settings either way); clips run alone, as they are (5-D latents take neither).
    out = rendezvous.call(pipe, **kwargs) if kind == "image" else pipe(**kwargs)
    if kind == "clip":
        frames = [_as_pil(frame) for frame in out.frames[0]]
        return Rendered(pictures=frames[:1], frames=frames)
    return Rendered(pictures=list(out.images))


def _as_pil(frame: Any) -> Image.Image:
    if isinstance(frame, Image.Image):
        return frame.convert("RGB")
    array = frame if not torch.is_tensor(frame) else frame.float().cpu().numpy()
    import numpy as np

    array = np.asarray(array)
    if array.dtype != np.uint8:
        array = (array.clip(0, 1) * 255).round().astype(np.uint8)
    return Image.fromarray(array)


def encode_clip(frames: list[Image.Image], fps: int, scale: int = 1) -> Clip:
    """An animated GIF that loops, at `fps`, each frame upscaled `scale` times for display."""
    shown = [encoding.upscale(frame, scale) for frame in frames]
    out = io.BytesIO()
    shown[0].save(
        out,
        format="GIF",
        save_all=True,
        append_images=shown[1:],
        duration=max(1, round(1000 / fps)),
        loop=0,
        optimize=False,
    )
    import base64

    return Clip(
        width=shown[0].width,
        height=shown[0].height,
        frames=len(shown),
        fps=fps,
        data=base64.b64encode(out.getvalue()).decode("ascii"),
    )


def upscaled(spec: JobSpec, limits: Limits) -> JobSpec:
    """An upscale's spec at `scale` times its native size, checked again against the limits at that size."""
    assert spec.init_image is not None and spec.width is not None and spec.height is not None
    scale = spec.init_image.scale
    data = spec.model_dump(mode="json")
    data.update(width=spec.width * scale, height=spec.height * scale)
    return JobSpec.parse(data, limits)


def warm_up(pipe: Any, family: Family | None, spec: JobSpec) -> float:
    """One short run before any member's job (a compiled model compiles here); returns the seconds it took."""
    started = time.perf_counter()
    call(
        pipe,
        family,
        spec,
        generators=[torch.Generator(device="cpu").manual_seed(0)],
        width=spec.width,
        height=spec.height,
    )
    took = time.perf_counter() - started
    log.info("model %r warmed up in %.1f s", spec.model, took)
    return took
