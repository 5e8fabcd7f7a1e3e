"""Load a registry entry as a diffusers pipeline, and build samplers by name.

Every model goes through the same few diffusers calls (`DiffusionPipeline.from_pretrained` for folders and hub
ids, the family pipeline's `from_single_file` for one-file checkpoints), so the worker runs the shipped model, a
tiny test model or an owner's SDXL, FLUX or Wan with the same code. Placement (device, offload, compile) is the
worker's business (`worker.gpu`); this module loads, checks the family and attaches the entry's LoRAs.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from diffusers import (
    DDIMScheduler,
    DiffusionPipeline,
    DPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
)
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from imagine.contract import SAMPLERS
from models import families, lora, tiny
from models.clips import tiny as tiny_clips
from models.families import FLOW_SAMPLERS, Family
from models.registry import ModelEntry
from models.samplers import KarrasDPMSolverMultistepScheduler, SafeEulerAncestralDiscreteScheduler

log = logging.getLogger(__name__)

#: Sampler name -> (scheduler class, config overrides). Names follow the A1111 convention; `models.samplers` says
#: why two of them are subclasses.
SCHEDULERS: dict[str, tuple[Any, dict[str, Any]]] = {
    "euler": (EulerDiscreteScheduler, {"use_karras_sigmas": False}),
    "euler_a": (SafeEulerAncestralDiscreteScheduler, {}),
    "dpm++_2m": (
        DPMSolverMultistepScheduler,
        {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": False},
    ),
    "dpm++_2m_karras": (
        KarrasDPMSolverMultistepScheduler,
        {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True},
    ),
    "ddim": (DDIMScheduler, {}),
}
assert set(SCHEDULERS) == set(SAMPLERS), "every contract sampler needs a scheduler"

DTYPES: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "float32": torch.float32,
    "fp16": torch.float16,
    "float16": torch.float16,
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
}


class FamilyMismatch(ValueError):
    """The weights are another family's than the registry entry says."""


def make_scheduler(name: str, base_config: Any, family: Family | None = None) -> SchedulerMixin:
    """A fresh scheduler for sampler `name`, keeping the model's own config (betas, prediction type, shift, …).

    Flow-matching families (SD3, FLUX, Wan) take only `euler`: flow-matching Euler on the model's own shift.
    """
    if family is not None and family.samplers == FLOW_SAMPLERS:
        if name not in FLOW_SAMPLERS:
            raise ValueError(f"sampler {name!r} does not apply to {family.name}; it takes {', '.join(FLOW_SAMPLERS)}")
        config = dict(base_config)
        overrides: dict[str, Any] = {}
        if "shift" not in config and "flow_shift" in config:  # Wan ships UniPC with `flow_shift`
            overrides["shift"] = config["flow_shift"]
        return FlowMatchEulerDiscreteScheduler.from_config(config, **overrides)
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


def resolve_dtype(name: str, device: torch.device, family: Family | None = None, bf16: bool = True) -> torch.dtype:
    """`auto` is half precision on a GPU (bf16 where the family needs its range and the card has it, else fp16)
    and float32 on the CPU (where half precision is slow or missing)."""
    if name != "auto":
        return DTYPES[name]
    if device.type == "cuda":
        return torch.bfloat16 if family is not None and family.half == "bf16" and bf16 else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32


def folder_family(where: Path | str) -> Family:
    """The family a diffusers folder holds, from its `model_index.json` (no weights are read)."""
    index = Path(where) / "model_index.json"
    class_name = json.loads(index.read_text(encoding="utf-8")).get("_class_name", "")
    return families.of_pipeline(class_name)


def import_project_components(folder: Path) -> None:
    """Import the classes of this project's own `models` package that a folder names (the shipped model's UNet).

    diffusers loads a component from outside its known libraries only when its module is already imported, and
    rightly never imports a module because a downloaded folder names it. Our own package is trusted code.
    """
    index = folder / "model_index.json"
    if not index.is_file():
        return
    for value in json.loads(index.read_text(encoding="utf-8")).values():
        if isinstance(value, list) and value and isinstance(value[0], str) and value[0].startswith("models."):
            importlib.import_module(value[0])


def load_pipeline(
    entry: ModelEntry,
    *,
    data_dir: Path,
    device: torch.device,
    dtype: torch.dtype,
    place: Callable[[Any, Family], Any] | None = None,
    safety_checker: bool = True,
) -> Any:
    """Load `entry` in `dtype`, check its family, attach its LoRAs, then place it (`place`, or `.to(device)`).

    `safety_checker=False` (or the entry's `nsfw = "allow"`) skips loading the checker at all.
    """
    where = entry.location(data_dir)
    if entry.source == "tiny":
        (tiny_clips if entry.kind == "clip" else tiny).ensure(Path(where))
    log.info("loading model %r from %s (%s)", entry.name, where, str(dtype).removeprefix("torch."))
    family = entry.family_info
    wants_checker = safety_checker and entry.nsfw != "allow"
    if entry.source == "single_file":
        assert family is not None  # the registry requires a family for single files
        pipe = _single_file(entry, family, str(where), dtype, wants_checker)
    else:
        # Safetensors only, unless the entry says otherwise: a pickled checkpoint runs code when it loads.
        kwargs: dict[str, Any] = {"dtype": dtype, "use_safetensors": not entry.allow_pickle}
        if entry.variant:
            kwargs["variant"] = entry.variant
        if family is not None and family.safety_checker and not wants_checker:
            kwargs.update(safety_checker=None, requires_safety_checker=False)
        import_project_components(Path(where))
        pipe = DiffusionPipeline.from_pretrained(str(where), **kwargs)
    found = _check_family(entry, pipe)
    lora.attach(pipe, entry)
    pipe.set_progress_bar_config(disable=True)
    if place is not None:
        return place(pipe, found)
    return pipe.to(device)


def _single_file(entry: ModelEntry, family: Family, where: str, dtype: torch.dtype, checker: bool) -> Any:
    """`from_single_file` with the entry's `config`: offline, diffusers needs a local folder of configs."""
    import diffusers

    if Path(where).suffix != ".safetensors" and not entry.allow_pickle:
        raise ValueError(
            f"model {entry.name!r}: {Path(where).name} is a pickle, and loading one runs code from the file; "
            "convert it to .safetensors, or set allow_pickle = true in its registry entry if you trust it"
        )
    cls = getattr(diffusers, family.pipeline)
    kwargs: dict[str, Any] = {"dtype": dtype}
    if entry.config:
        kwargs["config"] = entry.config
    if family.safety_checker and checker and entry.config and has_weights(Path(entry.config) / "safety_checker"):
        kwargs["load_safety_checker"] = True
    return cls.from_single_file(where, **kwargs)


def has_weights(folder: Path) -> bool:
    """Whether a component folder holds weights (a config-only folder has just its JSON)."""
    return folder.is_dir() and (any(folder.glob("*.safetensors")) or any(folder.glob("*.bin")))


def _check_family(entry: ModelEntry, pipe: Any) -> Family:
    """The family of the loaded pipeline; a mismatch with the entry is an error, not a surprise at the first job."""
    class_name = type(pipe).__name__
    family = entry.family_info
    if family is None:
        return families.of_pipeline(class_name)
    if class_name not in family.classes:
        raise FamilyMismatch(f"model {entry.name!r} is a {class_name}, not the {family.name} its entry says")
    return family
