"""`imagine generate --clip`: the same queue and worker as the bot, with the clip written as MP4 (or GIF)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import av
import pytest

from models.clips import tiny
from tests.helpers import ROOT, worker_env
from worker import video


@pytest.mark.slow
def test_generate_clip_writes_an_mp4_with_the_asked_frames_fps_and_parameters(
    tmp_path: Path, data_dir: Path, redis_url: str
) -> None:
    tiny.ensure(data_dir / "models" / "tiny-clips")
    out = tmp_path / "clip.png"
    proc = subprocess.run(
        [sys.executable, "-m", "imagine", "generate", "a red circle moving right", "--clip", "--frames", "5",
         "--fps", "10", "--seed", "3", "--steps", "2", "--model", "tiny-clips", "--out", str(out), "--local-worker"],
        cwd=ROOT, env=worker_env(redis_url, data_dir), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    written = tmp_path / "clip.mp4"
    assert proc.stdout.split() == [str(written)]
    data = written.read_bytes()
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.average_rate == 10
        assert sum(1 for _ in container.decode(video=0)) == 5
    parameters = video.read_parameters(data)
    assert parameters is not None and parameters.startswith("a red circle moving right\nSteps: 2,")
    assert "Model: tiny-clips, Frames: 5, FPS: 10" in parameters
