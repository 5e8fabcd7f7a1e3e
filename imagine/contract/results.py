"""What a job returns (stored by RQ, as JSON): the resolved spec, seeds, encoded images or a clip, timings."""

from __future__ import annotations

import base64

from pydantic import BaseModel, Field

from .spec import ClipFormat, JobSpec


class Image(BaseModel):
    """One encoded picture. `width`/`height` are the PNG's own (display) size."""

    seed: int
    width: int
    height: int
    png: str = Field(description="base64 of the PNG bytes")

    def png_bytes(self) -> bytes:
        return base64.b64decode(self.png)

    @classmethod
    def from_png(cls, seed: int, width: int, height: int, data: bytes) -> Image:
        return cls(seed=seed, width=width, height=height, png=base64.b64encode(data).decode("ascii"))


class Timings(BaseModel):
    """Where a job's time went; `loaded` is True when this job had to load its pipeline."""

    loaded: bool
    load_s: float
    sample_s: float
    encode_s: float


class Clip(BaseModel):
    """An animation (clips from video families): MP4 (H.264) or an animated GIF, both of which Discord plays inline."""

    format: ClipFormat = "gif"
    width: int
    height: int
    frames: int
    fps: int
    data: str = Field(description="base64 of the file")

    def data_bytes(self) -> bytes:
        return base64.b64decode(self.data)


class JobResult(BaseModel):
    """What `worker.jobs.generate` returns: the resolved spec (no token), seeds and encoded images."""

    job_id: str
    spec: JobSpec
    seeds: list[int]
    images: list[Image]
    grid: Image | None = None
    native_width: int
    native_height: int
    worker: str
    timings: Timings
    #: Clips: the animation (`images` then holds its first frame, as a poster for buttons and variations).
    clip: Clip | None = None
    #: Indexes of images the model's safety checker blacked out.
    filtered: list[int] = Field(default_factory=list)
