"""GPU practice for a resident pipeline: where it goes, in what precision, and how it is made fast and kept alive.

Each practice is a setting with the safe choice on by default (see `.env.example`): half precision on CUDA (bf16
for the families that overflow in fp16), SDPA attention, channels-last UNets, VAE slicing for batches and tiling
for large sizes, model CPU offload on small cards, and optionally `torch.compile`, warmed up when the worker
starts so no member's job pays for the compilation. Out of memory is a refusal with a smaller size suggested; the
worker frees what it can and takes the next job.

Every decision is a small function of the settings and the device, so it is tested on a CPU with a fake device.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import torch

from imagine.contract import JobSpec
from imagine.settings import Settings
from models import loader
from models.families import Family
from models.registry import ModelEntry

log = logging.getLogger(__name__)

GIB = 1024**3
Offload = Literal["none", "model", "sequential"]


class OutOfMemory(Exception):
    """The job did not fit on the card: refused (not retried) with a smaller request suggested."""


@dataclass(frozen=True)
class Policy:
    """The GPU settings a worker applies to every pipeline it loads."""

    device: str = "auto"
    dtype: str = "auto"
    sdpa: bool = True
    channels_last: bool = True
    vae_slicing: bool = True
    vae_tiling_above: int = 1024 * 1024
    offload: Literal["auto", "none", "model", "sequential"] = "auto"
    offload_below_gib: float = 12.0
    compile: bool = False
    compile_mode: str = "default"
    safety_checker: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            device=settings.device,
            dtype=settings.dtype,
            sdpa=settings.sdpa,
            channels_last=settings.channels_last,
            vae_slicing=settings.vae_slicing,
            vae_tiling_above=settings.vae_tiling_above,
            offload=settings.offload,
            offload_below_gib=settings.offload_below_gib,
            compile=settings.compile,
            compile_mode=settings.compile_mode,
            safety_checker=settings.safety_checker,
        )


# --- Decisions (pure functions: the device facts are arguments) ---


def device_for(entry: ModelEntry, policy: Policy, worker_device: torch.device) -> torch.device:
    """The entry's device when it pins one, else the worker's.

    A worker started for one GPU (`--device cuda:1`) owns that card: an entry pinned to another GPU runs on the
    worker's instead (with a warning), so one worker per GPU never piles models onto a card another worker uses.
    `cpu` is always honoured (a small model kept off the card).
    """
    if entry.device is None:
        return worker_device
    wanted = torch.device(entry.device)
    if wanted.type == "cpu" or policy.device == "auto":
        return wanted
    if wanted != worker_device:
        log.warning("model %r asks for %s; this worker owns %s and runs it there", entry.name, wanted, worker_device)
    return worker_device


def dtype_for(
    entry: ModelEntry, policy: Policy, device: torch.device, family: Family | None, bf16: bool
) -> torch.dtype:
    """The entry's dtype, else the worker's, else half precision on a GPU (bf16 for FLUX/SD3/Wan when supported)."""
    name = entry.dtype if entry.dtype != "auto" else policy.dtype
    return loader.resolve_dtype(name, device, family, bf16=bf16)


def offload_for(policy: Policy, device: torch.device, total_memory: int | None) -> Offload:
    """Model CPU offload on a card smaller than `offload_below_gib` (auto), or as set; never off CUDA."""
    if device.type != "cuda":
        return "none"
    if policy.offload != "auto":
        return policy.offload
    if total_memory is not None and total_memory < policy.offload_below_gib * GIB:
        return "model"
    return "none"


def tiling_for(policy: Policy, width: int, height: int) -> bool:
    """Tiled VAE decoding above `vae_tiling_above` pixels (large sizes would otherwise spike the memory)."""
    return bool(policy.vae_tiling_above) and width * height > policy.vae_tiling_above


def smaller_request(spec: JobSpec) -> str:
    """What to ask for instead after running out of memory: fewer images first, then ~3/4 of the sides."""
    hints = []
    if spec.count > 1:
        hints.append("1 image at a time")
    if spec.kind == "clip" and spec.frames and spec.frames > 9:
        hints.append(f"about {max(9, spec.frames // 2)} frames")
    if spec.width and spec.height:
        w, h = (max(64, int(side * 0.75) // 8 * 8) for side in (spec.width, spec.height))
        if (w, h) != (spec.width, spec.height):
            hints.append(f"{w}x{h}")
    return " or ".join(hints) or "a smaller request"


# --- Device facts (the only calls that need a GPU; tests pass fakes) ---


def cuda_total_memory(device: torch.device) -> int | None:
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    return int(torch.cuda.get_device_properties(device).total_memory)


def cuda_bf16(device: torch.device) -> bool:
    return device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()


# --- Applying them ---


class Placer:
    """Loads entries for one worker: picks device and dtype, loads, then applies the practices in order."""

    def __init__(
        self,
        policy: Policy,
        *,
        data_dir: Any,
        total_memory: Callable[[torch.device], int | None] = cuda_total_memory,
        bf16: Callable[[torch.device], bool] = cuda_bf16,
        compiler: Callable[[torch.nn.Module, str], None] | None = None,
    ) -> None:
        self.policy = policy
        self.data_dir = data_dir
        self.worker_device = loader.resolve_device(policy.device)
        self.total_memory = total_memory
        self.bf16 = bf16
        self.compiler = compiler or _compile
        #: What was done to each loaded model, by name (for logs, `imagine status` and tests).
        self.applied: dict[str, dict[str, Any]] = {}

    def load(self, entry: ModelEntry) -> Any:
        device = device_for(entry, self.policy, self.worker_device)
        family = entry.family_info
        if family is None and entry.source in ("local", "tiny"):
            with contextlib.suppress(Exception):
                family = loader.folder_family(entry.location(self.data_dir))
        dtype = dtype_for(entry, self.policy, device, family, self.bf16(device))
        return loader.load_pipeline(
            entry,
            data_dir=self.data_dir,
            device=device,
            dtype=dtype,
            place=lambda pipe, found: self.place(entry.name, pipe, found, device),
            safety_checker=self.policy.safety_checker,
        )

    def place(self, name: str, pipe: Any, family: Family, device: torch.device) -> Any:
        """Attention, memory format, VAE, then offload or `.to(device)`, then compile."""
        policy = self.policy
        applied: dict[str, Any] = {"device": str(device), "family": family.name}
        denoiser = denoiser_of(pipe)
        if not policy.sdpa and denoiser is not None and hasattr(denoiser, "set_attn_processor"):
            from diffusers.models.attention_processor import AttnProcessor

            with contextlib.suppress(Exception):  # transformer families have their own processors
                denoiser.set_attn_processor(AttnProcessor())
                applied["attention"] = "classic"
        applied.setdefault("attention", "sdpa")
        if policy.channels_last and device.type == "cuda" and family.denoiser == "unet" and denoiser is not None:
            denoiser.to(memory_format=torch.channels_last)
            applied["channels_last"] = True
        vae = getattr(pipe, "vae", None)
        if policy.vae_slicing and vae is not None and hasattr(vae, "enable_slicing"):
            vae.enable_slicing()
            applied["vae_slicing"] = True
        offload = offload_for(policy, device, self.total_memory(device))
        applied["offload"] = offload
        if offload == "model":
            pipe.enable_model_cpu_offload(device=device)
        elif offload == "sequential":
            pipe.enable_sequential_cpu_offload(device=device)
        else:
            pipe.to(device)
        if policy.compile and denoiser is not None:
            if offload != "none":
                log.warning("model %r: not compiled, because it is offloaded (the two do not mix well)", name)
            else:
                self.compiler(denoiser, policy.compile_mode)
                applied["compiled"] = policy.compile_mode
        applied["dtype"] = str(getattr(pipe, "dtype", "")).removeprefix("torch.")
        self.applied[name] = applied
        log.info("model %r placed: %s", name, ", ".join(f"{k}={v}" for k, v in applied.items()))
        return pipe


def denoiser_of(pipe: Any) -> Any:
    """The UNet or the transformer: the module that runs every step."""
    return getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)


def _compile(module: torch.nn.Module, mode: str) -> None:
    """In place (`nn.Module.compile`), so the pipeline keeps its own module and `from_pipe` shares the compiled one."""
    module.compile(mode=mode)


def set_tiling(pipe: Any, policy: Policy, width: int, height: int) -> bool:
    """Tiled VAE for this job's size (on above the threshold, off below it); returns whether it is on."""
    vae = getattr(pipe, "vae", None)
    if vae is None or not hasattr(vae, "enable_tiling"):
        return False
    tiled = tiling_for(policy, width, height)
    if tiled:
        vae.enable_tiling()
    elif getattr(vae, "use_tiling", False):
        vae.disable_tiling()
    return tiled


@contextlib.contextmanager
def out_of_memory_refused(spec: JobSpec, device: torch.device | None = None) -> Iterator[None]:
    """Turn a CUDA out-of-memory into a refusal that suggests a smaller request, after freeing the cache."""
    try:
        yield
    except torch.OutOfMemoryError as exc:
        log.warning("out of memory at %sx%s x%d on %s: %s", spec.width, spec.height, spec.count, device, exc)
        del exc
        free_memory()
        raise OutOfMemory(
            f"that did not fit in the GPU's memory at {spec.width}x{spec.height}"
            + (f" with {spec.count} images" if spec.count > 1 else "")
            + f"; try {smaller_request(spec)}"
        ) from None


def free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
