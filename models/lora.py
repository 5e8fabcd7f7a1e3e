"""LoRAs from the registry: fused into the weights at load, or loaded as named adapters chosen per job.

A fused LoRA costs nothing per job and cannot be turned off; a per-job LoRA stays loaded as a PEFT adapter, off
until a job names it, so members pick among the listed ones without any reload (`load_lora_weights` runs once).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from models.registry import ModelEntry

log = logging.getLogger(__name__)


def attach(pipe: Any, entry: ModelEntry) -> None:
    """Load the entry's LoRAs into `pipe`: fuse the `fuse = true` ones, keep the others as disabled adapters."""
    if not entry.loras:
        return
    fused = [item for item in entry.loras.values() if item.fuse]
    chosen = [item for item in entry.loras.values() if not item.fuse]
    for item in fused + chosen:
        path = Path(item.file)
        pipe.load_lora_weights(str(path.parent), weight_name=path.name, adapter_name=item.name)
    if fused:
        names = [item.name for item in fused]
        pipe.set_adapters(names, adapter_weights=[item.weight for item in fused])
        pipe.fuse_lora(adapter_names=names, lora_scale=1.0)
        pipe.delete_adapters(names)  # the fused weights stay; the adapter layers go
        log.info("model %r: fused LoRAs %s", entry.name, ", ".join(names))
    if chosen:
        pipe.disable_lora()
        log.info("model %r: LoRAs members may choose: %s", entry.name, ", ".join(item.name for item in chosen))


def choose(pipe: Any, entry: ModelEntry, names: Sequence[str]) -> None:
    """Turn on exactly the per-job LoRAs `names` (already checked against the entry) at their listed weights."""
    if not entry.choosable_loras:
        return
    if not names:
        pipe.disable_lora()
        return
    pipe.enable_lora()
    pipe.set_adapters(list(names), adapter_weights=[entry.loras[name].weight for name in names])
