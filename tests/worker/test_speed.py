"""worker/speed.py: a float32 CPU pipeline samples channels-last inside a worker, on any CPU; bf16 autocast only
where the CPU has bf16 units and the setting asks for it; nothing outside a worker unless asked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tests.helpers import context_with
from worker import context, speed
from worker.context import WorkerContext


def tiny_pipe(tiny_dir: Path) -> Any:
    from diffusers import DiffusionPipeline

    return DiffusionPipeline.from_pretrained(tiny_dir)


def channels_last(pipe: Any) -> bool:
    return bool(pipe.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last))


@pytest.mark.parametrize("bf16_units", [False, True])
def test_in_a_worker_channels_last_on_any_cpu_bf16_only_with_units(
    ctx: WorkerContext,
    redis_url: str,
    data_dir: Path,
    tiny_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    bf16_units: bool,
) -> None:
    monkeypatch.setattr(speed, "bf16_supported", lambda: bf16_units)
    pipe = tiny_pipe(tiny_dir)
    with context.use(context_with(ctx, redis_url, data_dir, cpu_bf16=True)), speed.applied(pipe) as on:
        assert on and channels_last(pipe)
        assert torch.is_autocast_enabled("cpu") == bf16_units
    assert not torch.is_autocast_enabled("cpu")


def test_the_setting_off_keeps_float32_autocast_off(
    ctx: WorkerContext, redis_url: str, data_dir: Path, tiny_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(speed, "bf16_supported", lambda: True)
    pipe = tiny_pipe(tiny_dir)
    with context.use(context_with(ctx, redis_url, data_dir, cpu_bf16=False)), speed.applied(pipe) as on:
        assert on and channels_last(pipe) and not torch.is_autocast_enabled("cpu")


def test_outside_a_worker_nothing_unless_asked(tiny_dir: Path) -> None:
    pipe = tiny_pipe(tiny_dir)
    with speed.applied(pipe) as on:
        assert not on and not channels_last(pipe)
    with speed.applied(pipe, enabled=False) as on:
        assert not on and not channels_last(pipe)
    with speed.applied(pipe, enabled=True) as on:
        assert on and channels_last(pipe)
        assert torch.is_autocast_enabled("cpu") == speed.bf16_supported()


def test_a_pipeline_that_is_not_float32_on_the_cpu_is_left_alone(tiny_dir: Path) -> None:
    pipe = tiny_pipe(tiny_dir).to(dtype=torch.bfloat16)
    with speed.applied(pipe, enabled=True) as on:
        assert not on and not channels_last(pipe)
