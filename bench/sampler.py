"""Section 3: the sampler itself on the shipped model, against what this CPU can do at most.

Time per image at the model's steps (20), batch 1 and 8, under each CPU setting tried: float32 as diffusers gives
it; channels-last (what the worker uses on CPUs without bf16 units); bf16 autocast; both (what it uses on CPUs with
them); both on two threads. FLOPs of one UNet call are counted with `torch.utils.flop_counter` (classifier-free
guidance doubles the batch the UNet sees); calls per second come from the timed pipeline calls (text encoding and
decoding included, so the share is a lower bound); the peak is a large matmul timed in the same run, float32 as the
issue asks, and bf16 (the AMX units the bf16 path uses) beside it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import time
from collections.abc import Iterator
from typing import Any

from bench import common
from bench.throughput import PROMPTS

log = logging.getLogger(__name__)

#: name -> (channels-last, bf16 autocast, torch threads)
SETTINGS: dict[str, tuple[bool, bool, int]] = {
    "float32": (False, False, 1),
    "channels-last": (True, False, 1),
    "bf16 autocast": (False, True, 1),
    "bf16 + channels-last": (True, True, 1),
    "bf16 + channels-last, 2 threads": (True, True, 2),
}
SHIPPED = "bf16 + channels-last"


def shipped() -> str:
    """The setting the worker uses on this CPU (`worker.speed`): channels-last alone where it has no bf16 units."""
    from worker import speed

    return SHIPPED if speed.bf16_supported() else "channels-last"


def peak_matmul(dtype_name: str, n: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of an n x n matmul, best of `repeats` (the best is the closest to what the core can do)."""
    import torch

    dtype = getattr(torch, dtype_name)
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def unet_flops(pipe: Any, images: int) -> int:
    """FLOPs of one UNet call for `images` images with classifier-free guidance (the UNet sees 2x the batch)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    unet = pipe.unet
    cfg = unet.config
    batch = 2 * images
    size = cfg.sample_size if isinstance(cfg.sample_size, int) else cfg.sample_size[0]
    inputs: dict[str, Any] = {
        "sample": torch.randn(batch, cfg.in_channels, size, size),
        "timestep": torch.tensor(500.0),
        "encoder_hidden_states": torch.randn(batch, pipe.tokenizer.model_max_length, cfg.cross_attention_dim),
    }
    if cfg.addition_embed_type == "text":
        inputs["added_cond_kwargs"] = {"text_embeds": torch.randn(batch, pipe.text_encoder.config.projection_dim)}
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        unet(**inputs)
    return int(counter.get_total_flops())


@contextlib.contextmanager
def _setting(pipe: Any, channels_last: bool, bf16: bool, threads: int) -> Iterator[None]:
    import torch

    fmt = torch.channels_last if channels_last else torch.contiguous_format
    pipe.unet.to(memory_format=fmt)
    pipe.vae.to(memory_format=fmt)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
            yield
    finally:
        torch.set_num_threads(before)


def time_call(pipe: Any, images: int, steps: int, guidance: float, setting: tuple[bool, bool, int]) -> float:
    """Seconds for one pipeline call making `images` images."""
    import torch

    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(images)]
    generators = [torch.Generator().manual_seed(i) for i in range(images)]
    with _setting(pipe, *setting):
        start = time.perf_counter()
        pipe(prompts, num_inference_steps=steps, guidance_scale=guidance, generator=generators)
        return time.perf_counter() - start


def sampler(
    pipe: Any, steps: int, guidance: float, batches: list[int], rounds: int, names: list[str]
) -> dict[str, Any]:
    """Section 3. bf16 settings run only where the CPU has bf16 units: elsewhere oneDNN emulates bf16 at a small
    fraction of float32's speed (the worker turns it off there too, `worker.speed`), and timing it would take the
    bench past its ten minutes for a figure no owner would use."""
    from worker import speed

    has_bf16 = speed.bf16_supported()
    skipped = [name for name in names if SETTINGS[name][1] and not has_bf16]
    names = [name for name in names if name not in skipped]
    peak32 = peak_matmul("float32")
    peak16 = peak_matmul("bfloat16") if has_bf16 else math.nan
    flops = {b: unet_flops(pipe, b) for b in batches}
    for name in names:  # warm-up: oneDNN picks and caches kernels per shape and setting
        for b in batches:
            time_call(pipe, b, 2, guidance, SETTINGS[name])
    rows: list[dict[str, Any]] = []
    for b in batches:
        sides = [functools.partial(time_call, pipe, b, steps, guidance, SETTINGS[name]) for name in names]
        times = common.alternate(rounds, sides)
        for name, ts in zip(names, times, strict=True):
            t = common.median(ts)
            achieved = flops[b] * steps / t
            rows.append(
                {
                    "setting": name,
                    "batch": b,
                    "seconds_per_image": t / b,
                    "unet_calls_per_s": steps / t,
                    "achieved_flop_per_s": achieved,
                    "share_of_fp32_peak": achieved / peak32,
                    "share_of_bf16_peak": achieved / peak16,
                }
            )
    base = {(r["batch"]): r["seconds_per_image"] for r in rows if r["setting"] == "float32"}
    for r in rows:
        r["speedup_vs_float32"] = base.get(r["batch"], float("nan")) / r["seconds_per_image"]
    return {
        "steps": steps,
        "peak_fp32_flop_per_s": peak32,
        "peak_bf16_flop_per_s": peak16,
        "unet_flops_per_call": {str(b): flops[b] for b in batches},
        "rows": rows,
        "skipped_no_bf16_units": skipped,
    }
