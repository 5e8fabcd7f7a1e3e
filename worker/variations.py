"""Variations: image-to-image from one image of an earlier job, at a set strength, with new seeds.

The source image is read back from Redis (`imagine:images:<job>`, kept by `worker.delivery.store_images`), scaled
to the model's native size, and run through an image-to-image pipeline built with
`AutoPipelineForImage2Image.from_pipe`: it shares the resident text-to-image pipeline's UNet, VAE and text encoder,
so a variation costs no load and no memory beyond a small wrapper, cached per resident pipeline.
"""

from __future__ import annotations

import io
import logging
import weakref
from typing import Any

import redis
from PIL import Image

from imagine import keys
from imagine.contract import InitImage

log = logging.getLogger(__name__)

_img2img: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


class SourceGone(LookupError):
    """The image a variation starts from is no longer kept (or never existed)."""


def image2image(pipe: Any) -> Any:
    """The image-to-image pipeline sharing `pipe`'s components (built once per resident pipeline)."""
    found = _img2img.get(pipe)
    if found is None:
        from diffusers import AutoPipelineForImage2Image

        found = AutoPipelineForImage2Image.from_pipe(pipe)
        found.set_progress_bar_config(disable=True)
        _img2img[pipe] = found
        log.info("image-to-image pipeline %s built from the resident %s", type(found).__name__, type(pipe).__name__)
    return found


def source_png(conn: redis.Redis, init: InitImage) -> bytes:
    data = conn.hget(keys.images(init.job_id), str(init.index))
    if data is None:
        raise SourceGone(f"image {init.index + 1} of that job is no longer kept; re-roll it or start anew")
    return data.encode() if isinstance(data, str) else data


def load_source(conn: redis.Redis, init: InitImage, width: int, height: int) -> Image.Image:
    """The source image as RGB at the model's native `width` x `height` (results are stored upscaled)."""
    with Image.open(io.BytesIO(source_png(conn, init))) as opened:
        picture = opened.convert("RGB")
    if picture.size != (width, height):
        picture = picture.resize((width, height), Image.Resampling.LANCZOS)
    return picture


def denoising_steps(steps: int, strength: float) -> int:
    """How many steps image-to-image actually runs (diffusers skips the first (1 - strength) of them)."""
    return max(1, min(steps, int(steps * strength)))
