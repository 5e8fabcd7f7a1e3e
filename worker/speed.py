"""CPU speed settings for the sampler call: bf16 autocast and a channels-last UNet, where the CPU has bf16 units.

Measured on the shipped model (bench/sampler.py, one thread on a 2-core Xeon with AMX): a float32 UNet on the CPU
runs its convolutions at a fraction of the matmul peak; under bf16 autocast oneDNN uses the AMX/AVX512-BF16 units,
and channels-last saves the layout conversions around every convolution. Together they make a batch of 8 images
about twice as fast; a single image gains little (its time goes to many small operations, not arithmetic). The
shipped model was trained under bf16 autocast and its evaluation does not drop (README, "Latency budget").

Only pipelines on the CPU whose UNet is float32 are touched: GPU placement is `worker.gpu`'s business. Tried and
left out (figures in the README's latency budget): torch.compile (seven minutes to compile on the loaded machine;
per UNet call slower at batch 2, 119 vs 98 ms, and 1.3x faster at batch 16 in float32: not worth a worker's
start-up); fewer steps (the evaluation drops); two torch threads (see `make bench`, section 3).
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterator
from typing import Any

import torch

from worker import context

log = logging.getLogger(__name__)


@functools.cache
def bf16_supported() -> bool:
    """Whether oneDNN has fast bf16 kernels on this CPU (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def wanted() -> bool:
    """The worker's setting (`IMAGINE_CPU_BF16`); off outside a worker."""
    try:
        return bool(context.current().settings.cpu_bf16)
    except RuntimeError:
        return False


def eligible(pipe: Any) -> bool:
    """A float32 pipeline with a UNet, on the CPU."""
    unet = getattr(pipe, "unet", None)
    if unet is None:
        return False
    try:
        param = next(unet.parameters())
    except (StopIteration, AttributeError, TypeError):
        return False
    return bool(param.device.type == "cpu" and param.dtype == torch.float32)


def prepare(pipe: Any) -> None:
    """Channels-last UNet and VAE (once per pipeline; the weights' values do not change)."""
    if getattr(pipe, "_imagine_channels_last", False):
        return
    for name in ("unet", "vae"):
        module = getattr(pipe, name, None)
        if module is not None:
            module.to(memory_format=torch.channels_last)
    pipe._imagine_channels_last = True
    log.info("pipeline %s: channels-last on the CPU", type(pipe).__name__)


@contextlib.contextmanager
def applied(pipe: Any, enabled: bool | None = None) -> Iterator[bool]:
    """Run the block with the speed settings when wanted, supported and eligible; yields whether they apply."""
    on = (wanted() if enabled is None else enabled) and bf16_supported() and eligible(pipe)
    if not on:
        yield False
        return
    prepare(pipe)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        yield True
