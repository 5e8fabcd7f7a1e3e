"""What a job reports while it runs: progress events, in the order a job emits them (over Redis pub/sub)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, TypeAdapter


class Started(BaseModel):
    """A worker took the job (again, on a retry: `attempt` counts from 1)."""

    type: Literal["started"] = "started"
    job_id: str
    worker: str
    attempt: int = 1
    ts: float


class Progress(BaseModel):
    """Step `step` of `total` finished; `preview_png` (base64 PNG, small) rides along every few steps."""

    type: Literal["progress"] = "progress"
    job_id: str
    step: int
    total: int
    preview_png: str | None = None
    ts: float


class Done(BaseModel):
    """The result is stored; fetch it with `imagine.queue.fetch_result`."""

    type: Literal["done"] = "done"
    job_id: str
    ts: float


class Failed(BaseModel):
    """This attempt failed. `error` is fit to show a member; `retrying` says whether another attempt follows."""

    type: Literal["failed"] = "failed"
    job_id: str
    error: str
    retrying: bool = False
    ts: float


Event = Annotated[Started | Progress | Done | Failed, Field(discriminator="type")]
EVENT_ADAPTER: TypeAdapter[Started | Progress | Done | Failed] = TypeAdapter(Event)


def parse_event(data: str | bytes) -> Started | Progress | Done | Failed:
    """Parse one JSON-encoded progress event."""
    return EVENT_ADAPTER.validate_json(data)
