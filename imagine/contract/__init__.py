"""The bot–worker contract: what a job asks for (`spec`), what it reports while it runs (`events`), what it returns
(`results`), and what workers say about their models (`models`).

Everything here travels through Redis as JSON (never pickle: a pickle payload in Redis is code execution for anyone
who can write to it), so every shape is a pydantic model with a strict, documented JSON form. This package imports
nothing else of ours and nothing of torch: the bot, the workers and the CLI all depend on it, and it depends on none
of them. Import names from here; the modules are how it is laid out, not part of the contract.
"""

from .events import EVENT_ADAPTER, Done, Event, Failed, Progress, Started, parse_event
from .models import ModelInfo
from .results import Clip, Image, JobResult, Timings
from .spec import (
    JOB_ID,
    MAX_SEED,
    MODEL_NAME,
    SAMPLER_LABELS,
    SAMPLERS,
    ClipFormat,
    InitImage,
    JobSpec,
    Kind,
    Limits,
    ModelDefaults,
    Requester,
    Sampler,
    SpecError,
    parameters_text,
)

__all__ = [
    "EVENT_ADAPTER", "JOB_ID", "MAX_SEED", "MODEL_NAME", "SAMPLERS", "SAMPLER_LABELS", "Clip", "ClipFormat", "Done",
    "Event", "Failed", "Image", "InitImage", "JobResult", "JobSpec", "Kind", "Limits", "ModelDefaults", "ModelInfo",
    "Progress", "Requester", "Sampler", "SpecError", "Started", "Timings", "parameters_text", "parse_event",
]  # fmt: skip
