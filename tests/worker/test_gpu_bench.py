"""bench/unets.py on a CPU: its configs are the real SD 1.5 and SDXL UNets, its measuring code runs on a tiny one,
and without a GPU it says so instead of measuring."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType
from typing import Any

import pytest
import torch

from tests.helpers import ROOT


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_unets", ROOT / "bench" / "unets.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_unets"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("arch", "params", "text_dim"),
    [("sd15", 859_520_964, 768), ("sdxl", 2_567_463_684, 2048)],  # the published parameter counts
)
def test_the_configs_are_the_real_architectures(bench: ModuleType, arch: str, params: int, text_dim: int) -> None:
    from diffusers import UNet2DConditionModel

    config = bench.load_config(arch)
    with torch.device("meta"):  # shapes only: no memory, no time
        unet = UNet2DConditionModel.from_config(config)
    assert sum(p.numel() for p in unet.parameters()) == params
    assert config["cross_attention_dim"] == text_dim == bench.TEXT_DIM[arch]


def tiny_config(bench: ModuleType, arch: str) -> dict[str, Any]:
    """The real config's structure at toy widths (SDXL keeps its text-time conditioning)."""
    config = bench.load_config(arch)
    blocks = len(config["block_out_channels"])
    config.update(block_out_channels=[16, 32, 32, 32][:blocks], norm_num_groups=8, layers_per_block=1)
    config.update(cross_attention_dim=32, attention_head_dim=8, transformer_layers_per_block=1)
    if config.get("addition_embed_type") == "text_time":
        config.update(addition_time_embed_dim=8, projection_class_embeddings_input_dim=6 * 8 + 32)
    return config


@pytest.mark.parametrize("arch", ["sd15", "sdxl"])
def test_the_measuring_code_runs_both_paths_on_a_tiny_unet(bench: ModuleType, arch: str, monkeypatch) -> None:
    compiled: list[dict[str, Any]] = []
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, **kw: compiled.append(kw))
    config = tiny_config(bench, arch)
    cpu = torch.device("cpu")
    for path in ("eager", "tuned"):
        unet = bench.build(config, cpu, torch.float32)
        unet = bench.eager(unet) if path == "eager" else bench.tuned(unet, "max-autotune")
        rate, warm = bench.measure(unet, bench.inputs(config, 64, cpu, torch.float32), steps=2, warmup=1)
        assert rate > 0 and warm >= 0
    assert compiled == [{"mode": "max-autotune", "fullgraph": False}]
    assert unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)


def test_the_table_sets_ours_beside_the_published_figures(bench: ModuleType) -> None:
    m = bench.Measurement
    text = bench.table(
        [m("sd15", 512, "eager", 30.0, 31.0, 1.0), m("sd15", 512, "tuned", 45.0, 47.0, 60.0)], "NVIDIA H100"
    )
    row = next(line for line in text.splitlines() if line.startswith("sd15"))
    assert row.split() == ["sd15", "512", "30.00", "45.00", "1.50x", "31.0", "47.0"]


def test_without_a_gpu_it_says_so(bench: ModuleType, monkeypatch, capsys) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench.main([]) == 0
    assert "no CUDA GPU here" in capsys.readouterr().out
