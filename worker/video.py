"""Encode a clip's frames for Discord: MP4 (H.264, yuv420p, faststart) that plays inline everywhere, or a GIF.

MP4 is the default: Discord plays it inline on desktop and mobile, and it is a fraction of a GIF's size. The
encoder is PyAV's bundled FFmpeg (libx264), so nothing is needed on the machine. A GIF is made when the job asks
for one or when the MP4 encoder fails. Either way the file must fit the upload limit: the quality is lowered first
(a higher CRF for MP4, fewer colours for GIF), then the size, until it does. The job's parameters (the A1111 text
the PNGs carry) go into the file's own metadata: the MP4's `comment` tag, the GIF's comment extension.
"""

from __future__ import annotations

import base64
import io
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from imagine.contract import Clip, JobSpec, parameters_text
from worker import encoding

log = logging.getLogger(__name__)

#: Discord's limit for a server without boosts, when the job does not say better.
DEFAULT_LIMIT = 10 * 1024 * 1024
#: x264 constant rate factors, best first: 18 is visually lossless, 35 is rough but small.
CRF_LADDER = (18, 23, 28, 35)
#: GIF palette sizes, most first.
COLOR_LADDER = (256, 128, 64)
#: Each step down in size keeps this share of the width and height.
SHRINK = 0.75
SMALLEST = 32


class EncodingError(RuntimeError):
    """No encoding of the clip fits the limit (or none could be made at all)."""


@dataclass(frozen=True)
class Encoded:
    format: str
    data: bytes
    width: int
    height: int


def encode(
    frames: list[Image.Image],
    fps: int,
    *,
    scale: int = 1,
    fmt: str = "mp4",
    limit: int | None = None,
    parameters: str = "",
) -> Clip:
    """The clip as the contract's `Clip`: `fmt` ("mp4" or "gif") if it can be made within `limit`, else a GIF."""
    if not frames:
        raise EncodingError("a clip needs at least one frame")
    shown = [encoding.upscale(frame.convert("RGB"), scale) for frame in frames]
    limit = limit or DEFAULT_LIMIT
    made: Encoded | None = None
    if fmt == "mp4":
        try:
            made = _fit(_mp4_ladder(shown, fps, parameters), limit)
        except Exception as exc:  # a codec missing or failing: the GIF path still gives the member a clip
            log.warning("MP4 encoding failed (%s); making a GIF instead", exc)
    if made is None:
        made = _fit(_gif_ladder(shown, fps, parameters), limit)
    if made is None:
        raise EncodingError(f"the clip cannot be made smaller than {limit} bytes")
    return Clip(
        format=made.format,  # type: ignore[arg-type]
        width=made.width,
        height=made.height,
        frames=len(frames),
        fps=fps,
        data=base64.b64encode(made.data).decode("ascii"),
    )


def _fit(candidates: Iterator[Encoded], limit: int) -> Encoded | None:
    for candidate in candidates:
        if len(candidate.data) <= limit:
            return candidate
        log.info("%s at %dx%d is %d bytes, over %d", candidate.format, candidate.width, candidate.height,
                 len(candidate.data), limit)  # fmt: skip
    return None


def _sizes(frames: list[Image.Image], even: bool) -> Iterator[list[Image.Image]]:
    """The frames at their size, then smaller and smaller (even sides for yuv420p)."""
    w, h = frames[0].size
    while True:
        tw, th = (w - w % 2, h - h % 2) if even else (w, h)
        if (tw, th) == frames[0].size:
            yield frames
        else:
            yield [f.resize((max(2, tw), max(2, th)), Image.Resampling.LANCZOS) for f in frames]
        if min(w, h) <= SMALLEST:
            return
        w, h = max(SMALLEST, int(w * SHRINK)), max(SMALLEST, int(h * SHRINK))


def _mp4_ladder(frames: list[Image.Image], fps: int, parameters: str) -> Iterator[Encoded]:
    for sized in _sizes(frames, even=True):
        for crf in CRF_LADDER:
            yield Encoded("mp4", mp4(sized, fps, crf=crf, parameters=parameters), *sized[0].size)


def _gif_ladder(frames: list[Image.Image], fps: int, parameters: str) -> Iterator[Encoded]:
    for sized in _sizes(frames, even=False):
        for colors in COLOR_LADDER:
            yield Encoded("gif", gif(sized, fps, colors=colors, parameters=parameters), *sized[0].size)


def mp4(frames: list[Image.Image], fps: int, *, crf: int = 18, parameters: str = "") -> bytes:
    """H.264 in MP4, yuv420p, the index at the front (faststart) so a player starts before the whole file is in."""
    import av

    # faststart moves the index in a second pass over the finished file, which needs a real file to reopen.
    with tempfile.TemporaryDirectory(prefix="imagine-clip-") as tmp:
        path = Path(tmp) / "clip.mp4"
        _write_mp4(av, str(path), frames, fps, crf, parameters)
        return path.read_bytes()


def _write_mp4(av: Any, path: str, frames: list[Image.Image], fps: int, crf: int, parameters: str) -> None:
    with av.open(path, mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
        if parameters:
            container.metadata["comment"] = parameters
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames[0].size
        stream.pix_fmt = "yuv420p"
        # No B-frames and a keyframe every second: small clips decode and loop cleanly in every client.
        stream.options = {"crf": str(crf), "preset": "medium", "bf": "0", "g": str(max(1, fps))}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_image(frame)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def gif(frames: list[Image.Image], fps: int, *, colors: int = 256, parameters: str = "") -> bytes:
    """An animated GIF that loops; one palette for all frames, so colours do not flicker between frames."""
    sheet = Image.new("RGB", (frames[0].width, frames[0].height * len(frames)))
    for i, frame in enumerate(frames):
        sheet.paste(frame, (0, i * frame.height))
    palette = sheet.quantize(colors=colors, method=Image.Quantize.MEDIANCUT)
    paletted = [frame.quantize(palette=palette, dither=Image.Dither.NONE) for frame in frames]
    out = io.BytesIO()
    paletted[0].save(
        out,
        format="GIF",
        save_all=True,
        append_images=paletted[1:],
        duration=max(1, round(1000 / fps)),
        loop=0,
        optimize=False,
        disposal=1,
        comment=parameters.encode("utf-8") if parameters else b"",
    )
    return out.getvalue()


def read_parameters(data: bytes) -> str | None:
    """The parameters a clip of ours carries (MP4 comment tag or GIF comment), or None."""
    if data[:6] in (b"GIF87a", b"GIF89a"):
        with Image.open(io.BytesIO(data)) as opened:
            comment = opened.info.get("comment")
        return comment.decode("utf-8") if isinstance(comment, bytes) else comment
    import av

    with av.open(io.BytesIO(data)) as container:
        return container.metadata.get("comment")


def for_job(frames: list[Image.Image], spec: JobSpec, seed: int, scale: int) -> Clip:
    """A resolved clip job's file: its format (MP4 unless it asks for a GIF), fps, upload limit and parameters."""
    assert spec.fps is not None, "resolve the spec first (fps comes from the model's defaults)"
    return encode(
        frames,
        spec.fps,
        scale=scale,
        fmt=spec.clip_format or "mp4",
        limit=spec.requester.upload_limit if spec.requester is not None else None,
        parameters=parameters_text(spec, seed),
    )
