"""Load a registry entry as a diffusers pipeline, and build samplers by name.

Every model goes through the same two diffusers calls (`DiffusionPipeline.from_pretrained` for folders and hub
ids, `from_single_file` for checkpoints), so the worker runs the shipped model, a tiny test model or a hub model
with the same code.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from diffusers import (
    DDIMScheduler,
    DiffusionPipeline,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
)
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from imagine.contract import SAMPLERS
from models import tiny
from models.registry import ModelEntry

log = logging.getLogger(__name__)

#: Sampler name -> (scheduler class, config overrides). Names follow the A1111 convention.
SCHEDULERS: dict[str, tuple[Any, dict[str, Any]]] = {
    "euler": (EulerDiscreteScheduler, {"use_karras_sigmas": False}),
    "euler_a": (EulerAncestralDiscreteScheduler, {}),
    "dpm++_2m": (
        DPMSolverMultistepScheduler,
        {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": False},
    ),
    "dpm++_2m_karras": (
        DPMSolverMultistepScheduler,
        {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True},
    ),
    "ddim": (DDIMScheduler, {}),
}
assert set(SCHEDULERS) == set(SAMPLERS), "every contract sampler needs a scheduler"

_FAMILIES: dict[str, Any] = {
    "sd": StableDiffusionPipeline,
    "sdxl": StableDiffusionXLPipeline,
}


def make_scheduler(name: str, base_config: Any) -> SchedulerMixin:
    """A fresh scheduler for sampler `name`, keeping the model's own config (betas, prediction type, …)."""
    try:
        cls, overrides = SCHEDULERS[name]
    except KeyError:
        raise ValueError(f"unknown sampler {name!r}; known: {', '.join(SCHEDULERS)}") from None
    return cls.from_config(base_config, **overrides)


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA, then Apple's MPS, then the CPU."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """`auto` is float16 on a GPU and float32 on the CPU (where half precision is slow or missing)."""
    if name == "auto":
        return torch.float16 if device.type in ("cuda", "mps") else torch.float32
    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]


def load_pipeline(entry: ModelEntry, *, data_dir: Path, device: torch.device, dtype: torch.dtype) -> DiffusionPipeline:
    """Load `entry` onto `device` in `dtype`, with diffusers' own progress bars off (we report our own)."""
    where = entry.location(data_dir)
    if entry.source == "tiny":
        tiny.ensure(Path(where))
    log.info("loading model %r from %s on %s (%s)", entry.name, where, device, str(dtype).removeprefix("torch."))
    if entry.source == "single_file":
        if entry.family == "auto":
            raise ValueError(f"model {entry.name!r}: a single-file checkpoint needs family 'sd' or 'sdxl'")
        pipe = _FAMILIES[entry.family].from_single_file(str(where), dtype=dtype)
    else:
        pipe = DiffusionPipeline.from_pretrained(str(where), dtype=dtype)
        expected = _FAMILIES.get(entry.family)
        if expected is not None and not isinstance(pipe, expected):
            log.warning("model %r is a %s, not the %s its entry says", entry.name, type(pipe).__name__, entry.family)
    pipe = pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe
