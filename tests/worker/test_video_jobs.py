"""A clip job through the real queue and worker (the registry's tiny-clips): MP4 by default, GIF when asked."""

from __future__ import annotations

import base64
import io
from typing import Any

import av
import pytest
from PIL import Image

from imagine import keys, queue
from imagine.contract import JobSpec, Progress, Requester
from tests.helpers import events_of, run_burst
from worker import video
from worker.encoding import read_parameters


def clip_spec(**fields: Any) -> JobSpec:
    return JobSpec(
        **{"kind": "clip", "prompt": "a red circle moving right", "model": "tiny-clips", "seed": 3, **fields}
    )


def test_a_clip_job_makes_an_mp4_with_its_frames_fps_and_parameters(conn, settings, ctx) -> None:
    job = queue.enqueue(conn, clip_spec(frames=6, fps=12), settings)
    run_burst(ctx)
    result = queue.wait(conn, job.id, timeout=60)
    assert result.spec.frames == 6 and result.spec.fps == 12 and result.spec.steps == 4
    clip = result.clip
    assert clip is not None and (clip.format, clip.frames, clip.fps, clip.width) == ("mp4", 6, 12, 128)
    with av.open(io.BytesIO(clip.data_bytes())) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        assert stream.average_rate == 12 and sum(1 for _ in container.decode(video=0)) == 6
    expected = (
        "a red circle moving right\n"
        "Steps: 4, Sampler: DPM++ 2M, CFG scale: 4, Seed: 3, Size: 32x32, Model: tiny-clips, Frames: 6, FPS: 12"
    )
    assert video.read_parameters(clip.data_bytes()) == expected
    # The poster (first frame) is the PNG that buttons and records use, with the same parameters.
    assert len(result.images) == 1 and read_parameters(result.images[0].png_bytes()) == expected
    steps = [e for e in events_of(conn, job.id) if isinstance(e, Progress)]
    assert [(e.step, e.total) for e in steps] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    previews = [e.preview_png for e in steps if e.preview_png]
    assert previews, "a clip shows a preview of its first frame while it runs"
    with Image.open(io.BytesIO(base64.b64decode(previews[0]))) as preview:
        assert max(preview.size) == 32


def test_the_model_defaults_fill_frames_and_fps_and_a_gif_when_asked(conn, settings, ctx) -> None:
    job = queue.enqueue(conn, clip_spec(clip_format="gif"), settings)
    run_burst(ctx)
    result = queue.wait(conn, job.id, timeout=60)
    clip = result.clip
    assert clip is not None and (clip.format, clip.frames, clip.fps) == ("gif", 8, 8)
    with Image.open(io.BytesIO(clip.data_bytes())) as gif:
        assert gif.format == "GIF" and gif.n_frames == 8 and gif.size == (128, 128)


def test_a_clip_job_naming_no_model_gets_the_default_clip_model(conn, settings, ctx) -> None:
    job = queue.enqueue(conn, JobSpec(kind="clip", prompt="a blue star spinning", seed=1, steps=2), settings)
    run_burst(ctx)
    result = queue.wait(conn, job.id, timeout=60)
    # The shipped clip model (its weights are committed), drawing 64x64 frames shown at twice the size.
    assert result.spec.model == "clips" and result.clip is not None
    with av.open(io.BytesIO(result.clip.data_bytes())) as container:
        assert container.streams.video[0].codec_context.width == 128


def test_a_clip_that_fits_the_upload_limit_at_no_size_fails_at_once(conn, settings, ctx) -> None:
    spec = clip_spec(frames=3, steps=1, requester=Requester(upload_limit=100))
    job = queue.enqueue(conn, spec, settings)
    run_burst(ctx)
    with pytest.raises(queue.JobFailed, match="cannot be made smaller than 100 bytes"):
        queue.wait(conn, job.id, timeout=60)
    assert conn.hget(keys.job(job.id), "attempts") == b"1"  # refused, not retried
