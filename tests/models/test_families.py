"""Every family through the real worker: tiny random pipelines saved like owners' models, registered, and run.

Each image family makes an image and then a variation of it (image-to-image on the resident components, no second
copy of the weights); each video family makes a clip. The single-file SD checkpoint loads offline through its
`config` folder and gives the same pixels as the folder it was converted from.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from PIL import Image

from imagine import queue
from imagine.contract import InitImage, JobResult, JobSpec, Progress
from models import families
from tests.helpers import events_of, run_burst
from worker import variations
from worker.encoding import read_parameters
from worker.gpu import denoiser_of

IMAGE_MODELS = ["sd15", "sd2", "sdxl", "sd3", "flux"]
CLIP_MODELS = ["text-to-video-sd", "animatediff", "wan"]


def run_one(conn: Any, settings: Any, ctx: Any, **fields: Any) -> JobResult:
    job = queue.enqueue(conn, JobSpec(**{"prompt": "a red circle above a blue square", "seed": 3, **fields}), settings)
    run_burst(ctx)
    return queue.wait(conn, job.id, timeout=30)


def pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as picture:
        return np.asarray(picture.convert("RGB"), dtype=np.int16)


@pytest.mark.parametrize("model", IMAGE_MODELS)
def test_an_image_then_a_variation_of_it(conn, family_settings, family_ctx, model: str) -> None:
    entry = family_ctx.registry.get(model)
    first = run_one(conn, family_settings, family_ctx, model=model)
    assert (first.native_width, first.native_height) == (32, 32)
    assert first.spec.model == model and first.spec.steps == 2 and first.spec.sampler == entry.sampler
    resident, _ = family_ctx.pipelines.get(entry)
    assert type(resident.pipe).__name__ == families.get(model).pipeline
    loads = family_ctx.pipelines.loads

    varied = run_one(
        conn,
        family_settings,
        family_ctx,
        model=model,
        seed=4,
        init_image=InitImage(job_id=first.job_id, index=0, strength=0.75),
    )
    assert (varied.native_width, varied.native_height) == (32, 32)
    assert varied.images[0].png != first.images[0].png
    # The variation ran on the resident weights: nothing loaded, the img2img pipeline shares the modules.
    assert family_ctx.pipelines.loads == loads
    img2img = variations.image2image(resident.pipe)
    assert denoiser_of(img2img) is denoiser_of(resident.pipe)
    assert img2img.vae is resident.pipe.vae and img2img.text_encoder is resident.pipe.text_encoder


def decode_first_frame(fmt: str, data: bytes, frames: int) -> np.ndarray:
    """The clip file's first frame, after checking it holds `frames` frames at 32x32 (GIF, or MP4 with PyAV)."""
    if fmt == "gif":
        with Image.open(io.BytesIO(data)) as gif:
            assert gif.format == "GIF" and gif.n_frames == frames and gif.size == (32, 32)
            gif.seek(0)
            return np.asarray(gif.convert("RGB"), dtype=np.int16)
    assert fmt == "mp4" and data[4:8] == b"ftyp"
    av = pytest.importorskip("av")
    with av.open(io.BytesIO(data)) as container:
        decoded = [frame.to_image() for frame in container.decode(video=0)]
    assert len(decoded) == frames and decoded[0].size == (32, 32)
    return np.asarray(decoded[0].convert("RGB"), dtype=np.int16)


@pytest.mark.parametrize("model", CLIP_MODELS)
def test_a_clip(conn, family_settings, family_ctx, model: str) -> None:
    entry = family_ctx.registry.get(model)
    spec = JobSpec(kind="clip", prompt="a ball bouncing", model=model, seed=5, clip_format="gif")  # MP4 otherwise
    job = queue.enqueue(conn, spec, family_settings)
    run_burst(family_ctx)
    result = queue.wait(conn, job.id, timeout=30)
    family = families.get(model)
    assert result.clip is not None and result.spec.frames == entry.frames
    assert result.clip.frames == family.fit_frames(entry.frames) and result.clip.fps == entry.fps
    first_frame = decode_first_frame(result.clip.format, result.clip.data_bytes(), result.clip.frames)
    # The poster (for buttons and the PNG parameters) is the first frame (the file's is lossy: palette or H.264).
    assert len(result.images) == 1 and np.abs(pixels(result.images[0].png_bytes()) - first_frame).mean() < 16
    steps = [e for e in events_of(conn, job.id) if isinstance(e, Progress)]
    assert [(e.step, e.total) for e in steps] == [(1, 2), (2, 2)]


def test_an_image_model_refuses_a_clip_and_a_video_model_an_image(conn, family_settings, family_ctx) -> None:
    with pytest.raises(queue.JobFailed, match="makes images, not clips"):
        run_one(conn, family_settings, family_ctx, model="sd15", kind="clip")
    with pytest.raises(queue.JobFailed, match="makes clips, not images"):
        run_one(conn, family_settings, family_ctx, model="wan")
    with pytest.raises(queue.JobFailed, match="takes euler"):
        run_one(conn, family_settings, family_ctx, model="flux", sampler="dpm++_2m")


def test_a_single_file_checkpoint_loads_offline_and_matches_its_folder(conn, family_settings, family_ctx) -> None:
    from_file = run_one(conn, family_settings, family_ctx, model="sd15-file", seed=11)
    from_folder = run_one(conn, family_settings, family_ctx, model="sd15", seed=11)
    assert np.array_equal(pixels(from_file.images[0].png_bytes()), pixels(from_folder.images[0].png_bytes()))
    resident, _ = family_ctx.pipelines.get(family_ctx.registry.get("sd15-file"))
    assert type(resident.pipe).__name__ == "StableDiffusionPipeline"


def test_an_upscale_redraws_at_twice_the_size(conn, family_settings, family_ctx) -> None:
    first = run_one(conn, family_settings, family_ctx, model="sdxl", seed=21)
    up = run_one(
        conn,
        family_settings,
        family_ctx,
        model="sdxl",
        seed=21,
        width=32,
        height=32,
        init_image=InitImage(job_id=first.job_id, index=0, strength=0.3, scale=2),
    )
    assert (up.native_width, up.native_height) == (64, 64)
    assert up.spec.width == 64 and "Size: 64x64" in (read_parameters(up.images[0].png_bytes()) or "")
    # Within the limits at 1024x1024, too big once doubled: refused by the worker, naming the field.
    with pytest.raises(queue.JobFailed, match="width x height must be at most"):
        run_one(
            conn,
            family_settings,
            family_ctx,
            model="sdxl",
            width=1024,
            height=1024,
            init_image=InitImage(job_id=first.job_id, index=0, strength=0.3, scale=2),
        )
