"""Which device and metrics port each worker of `imagine up` gets: one worker per GPU, one port per worker.

Pure functions (no torch: the caller counts the CUDA devices), so the mapping is tested without a GPU. The rules:
`--devices` names one device per worker; without it, N workers on a machine with CUDA (IMAGINE_DEVICE `auto` or
`cuda`) get cuda:0 … cuda:N-1, and when there are fewer cards than workers they take turns (worker i on
cuda:i mod cards: two workers share a card and its memory, which the plan says in a warning). Any other
IMAGINE_DEVICE (`cpu`, `mps`, `cuda:1`) is used by every worker as it stands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda)(:\d+)?$")


class DevicesError(ValueError):
    """A `--devices` list that cannot be used (its message says why, in one line)."""


@dataclass(frozen=True)
class WorkerSlot:
    """Where worker `index` (0-based) runs and where it serves `/metrics` (0: not served)."""

    index: int
    device: str
    metrics_port: int


@dataclass(frozen=True)
class Plan:
    slots: list[WorkerSlot]
    warnings: list[str]


def parse(text: str) -> list[str]:
    """`cuda:0,cuda:1` or `cpu, cpu` -> the list of device names; raises DevicesError on a name torch would refuse."""
    names = [part.strip() for part in text.split(",")]
    if not names or any(not name for name in names):
        raise DevicesError(f"--devices {text!r}: give one device per worker, separated by commas (cuda:0,cuda:1)")
    for name in names:
        match = _DEVICE.match(name)
        if match is None or (match.group(1) in ("auto", "cpu") and match.group(2)):
            raise DevicesError(f"--devices: {name!r} is not a device (cpu, mps, cuda or cuda:N)")
    return names


def needs_cuda_count(devices: list[str] | None, default_device: str) -> bool:
    """Whether `plan` needs the number of visible CUDA devices (counting them imports torch: skip it when not)."""
    if devices is not None:
        return any(name.startswith("cuda") for name in devices)
    return default_device in ("auto", "cuda")


def plan(
    workers: int | None,
    devices: list[str] | None,
    *,
    default_device: str,
    cuda_count: int,
    metrics_port: int,
) -> Plan:
    """One slot per worker: its device and its metrics port (`metrics_port + i`, or 0 for all when it is 0)."""
    count = workers if workers is not None else len(devices) if devices is not None else 1
    if count < 1:
        raise DevicesError("--workers must be at least 1")
    warnings: list[str] = []
    if devices is not None:
        if len(devices) != count:
            raise DevicesError(f"--devices names {len(devices)} device(s) for {count} worker(s): give one per worker")
        chosen = list(devices)
        for name in chosen:
            index = int(name.split(":")[1]) if name.startswith("cuda:") else 0
            if name.startswith("cuda") and index >= cuda_count:
                seen = f"only {cuda_count} CUDA device(s) are visible" if cuda_count else "no CUDA device is visible"
                raise DevicesError(f"--devices: {name} does not exist here ({seen})")
    elif default_device in ("auto", "cuda") and cuda_count > 0:
        chosen = [f"cuda:{i % cuda_count}" for i in range(count)]
        if count > cuda_count:
            warnings.append(
                f"{count} workers on {cuda_count} CUDA device(s): workers share cards (worker i on cuda:i mod "
                f"{cuda_count}) and their memory; use --workers {cuda_count} for one worker per GPU"
            )
    else:
        chosen = [default_device] * count
    gpus = [name for name in chosen if name.startswith("cuda")]
    shared = sorted({name for name in gpus if gpus.count(name) > 1})
    if shared and not warnings:
        warnings.append(f"several workers share {', '.join(shared)}: each loads its own copy of the models")
    if metrics_port and metrics_port + count - 1 > 65535:
        raise DevicesError(f"metrics ports {metrics_port}..{metrics_port + count - 1} go past 65535")
    slots = [WorkerSlot(i, name, metrics_port + i if metrics_port else 0) for i, name in enumerate(chosen)]
    return Plan(slots, warnings)
