"""CPU speed settings for the sampler call: a channels-last UNet on every CPU, and bf16 autocast where the CPU has
bf16 units.

Measured on the shipped model (bench/sampler.py, one thread): channels-last saves the layout conversions around
every convolution, and oneDNN's channels-last kernels are faster in float32 too. On a 2-core AMD EPYC without bf16
units, float32, per image and UNet step: 46.7 -> 44.0 ms alone, 30.1 -> 23.0 ms in a batch of 8 (the batch gains
most: its convolutions are bigger). On a Xeon with AMX, bf16 autocast lets oneDNN use the AMX/AVX512-BF16 units;
with channels-last a batch of 8 is about twice as fast, a single image gains little (its time goes to many small
operations, not arithmetic). The shipped model was trained under bf16 autocast and its evaluation does not drop
(README, "Latency budget"); channels-last changes only the order of float sums.

Only pipelines on the CPU whose UNet is float32 are touched: GPU placement is `worker.gpu`'s business. Tried and
left out (figures in the README's latency budget): torch.compile (seven minutes to compile on the loaded machine;
per UNet call slower at batch 2, 119 vs 98 ms, and 1.3x faster at batch 16 in float32: not worth a worker's
start-up); torch.jit.trace + freeze (float32, channels-last: 40.2 vs 44.6 ms per image and step alone, 30.9 vs
26.8 in a batch of 8: slower where batching needs it); fewer steps (the evaluation drops); two torch threads (see
`make bench`, section 3).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import torch

from models.cpu import has_bf16
from worker import context

log = logging.getLogger(__name__)


def bf16_supported() -> bool:
    """Whether oneDNN has fast bf16 kernels on this CPU (`models.cpu.has_bf16`, which the recipes ask too)."""
    return has_bf16()


def wanted() -> bool:
    """The worker's setting (`IMAGINE_CPU_BF16`); off outside a worker."""
    try:
        return bool(context.current().settings.cpu_bf16)
    except RuntimeError:
        return False


def in_worker() -> bool:
    try:
        context.current()
    except RuntimeError:
        return False
    return True


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
    """Run the block with the speed settings where the pipeline is eligible; yields whether they apply.

    `enabled` None: as a worker runs it (channels-last inside a worker, bf16 autocast as `IMAGINE_CPU_BF16` says);
    True: both as shipped; False: neither. bf16 autocast only where the CPU has bf16 units (elsewhere oneDNN would
    emulate it at a fraction of float32's speed).
    """
    on = (in_worker() if enabled is None else enabled) and eligible(pipe)
    if not on:
        yield False
        return
    prepare(pipe)
    bf16 = (wanted() if enabled is None else True) and bf16_supported()
    with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
        yield True
