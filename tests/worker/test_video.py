"""worker/video.py: MP4 (H.264, yuv420p, faststart) read back by a real decoder, GIF, fitting a limit, metadata."""

from __future__ import annotations

import io
import random

import av
import pytest
from PIL import Image

from models.clips.world import ClipScene, render_clip
from worker import video


def frames(count: int = 8) -> list[Image.Image]:
    return render_clip(ClipScene("star", "red", "right", "blue"), count, random.Random(0))


def probe(data: bytes) -> dict:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        decoded = [f.to_image() for f in container.decode(video=0)]
        return {
            "codec": stream.codec_context.name,
            "pix_fmt": stream.codec_context.pix_fmt,
            "fps": stream.average_rate,
            "size": (stream.width, stream.height),
            "frames": len(decoded),
            "comment": container.metadata.get("comment"),
            "first": decoded[0],
        }


def test_mp4_is_h264_yuv420p_with_every_frame_the_fps_and_the_parameters() -> None:
    clip = video.encode(frames(8), 8, scale=4, parameters="a red star moving right\nSteps: 20, Seed: 1")
    data = clip.data_bytes()
    assert (clip.format, clip.width, clip.height, clip.frames, clip.fps) == ("mp4", 128, 128, 8, 8)
    found = probe(data)
    assert found["codec"] == "h264" and found["pix_fmt"] == "yuv420p"
    assert found["fps"] == 8 and found["frames"] == 8 and found["size"] == (128, 128)
    assert found["comment"] == "a red star moving right\nSteps: 20, Seed: 1"
    assert video.read_parameters(data) == "a red star moving right\nSteps: 20, Seed: 1"
    # faststart: the index (moov) comes before the media (mdat), so playback starts before the download ends.
    assert 0 <= data.find(b"moov") < data.find(b"mdat")
    # The colours survive: the first frame's centre-left is the red star on blue.
    assert found["first"].getpixel((5, 64))[2] > 150


def test_odd_sizes_are_made_even_for_yuv420p() -> None:
    odd = [f.resize((33, 21)) for f in frames(4)]
    clip = video.encode(odd, 12)
    assert clip.format == "mp4" and (clip.width, clip.height) == (32, 20)
    assert probe(clip.data_bytes())["fps"] == 12


def test_gif_when_asked_loops_with_the_frame_delay_and_the_parameters() -> None:
    clip = video.encode(frames(8), 10, scale=2, fmt="gif", parameters="a red star")
    data = clip.data_bytes()
    assert (clip.format, clip.width, clip.frames, clip.fps) == ("gif", 64, 8, 10)
    with Image.open(io.BytesIO(data)) as gif:
        assert gif.format == "GIF" and gif.n_frames == 8 and gif.info["duration"] == 100 and gif.info["loop"] == 0
    assert video.read_parameters(data) == "a red star"


def test_a_gif_when_the_mp4_encoder_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> bytes:
        raise av.error.FFmpegError(1, "no encoder")

    monkeypatch.setattr(video, "mp4", broken)
    clip = video.encode(frames(4), 8)
    assert clip.format == "gif" and clip.data_bytes()[:6] == b"GIF89a"


def test_a_clip_over_the_limit_gets_lower_quality_then_smaller() -> None:
    noise = [Image.effect_noise((256, 256), 90).convert("RGB") for _ in range(12)]
    best = video.encode(noise, 8)
    limit = len(best.data_bytes()) // 4
    fitted = video.encode(noise, 8, limit=limit)
    assert fitted.format == "mp4" and len(fitted.data_bytes()) <= limit
    assert probe(fitted.data_bytes())["frames"] == 12
    gif = video.encode(noise, 8, fmt="gif", limit=limit)
    assert gif.format == "gif" and len(gif.data_bytes()) <= limit and gif.width < 256


def test_nothing_fits_a_limit_too_small() -> None:
    with pytest.raises(video.EncodingError):
        video.encode(frames(4), 8, limit=100)
