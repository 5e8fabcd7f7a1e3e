"""models/loader.py and models/tiny.py: samplers by name keep the model's config; the tiny pipeline loads."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline

from models import loader, registry, tiny

V_PRED = DPMSolverMultistepScheduler(prediction_type="v_prediction", beta_schedule="scaled_linear").config


@pytest.mark.parametrize(
    ("name", "cls", "karras"),
    [
        ("euler", "EulerDiscreteScheduler", False),
        ("euler_a", "SafeEulerAncestralDiscreteScheduler", None),
        ("dpm++_2m", "DPMSolverMultistepScheduler", False),
        ("dpm++_2m_karras", "KarrasDPMSolverMultistepScheduler", True),
        ("ddim", "DDIMScheduler", None),
    ],
)
def test_samplers_by_name_keep_the_models_prediction_type(name: str, cls: str, karras: bool | None) -> None:
    scheduler = loader.make_scheduler(name, V_PRED)
    assert type(scheduler).__name__ == cls
    assert scheduler.config.prediction_type == "v_prediction"
    assert scheduler.config.beta_schedule == "scaled_linear"
    if karras is not None:
        assert scheduler.config.use_karras_sigmas is karras


def test_an_unknown_sampler_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown sampler"):
        loader.make_scheduler("plms", V_PRED)


def test_devices_and_dtypes() -> None:
    assert loader.resolve_device("cpu") == torch.device("cpu")
    assert loader.resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert loader.resolve_dtype("auto", torch.device("cuda")) == torch.float16
    assert loader.resolve_dtype("bfloat16", torch.device("cpu")) == torch.bfloat16


def test_the_tiny_entry_builds_on_demand_and_loads(tmp_path: Path) -> None:
    entry = registry.load().get("tiny")
    assert not tiny.is_built(tmp_path / "models" / "tiny")
    pipe = loader.load_pipeline(entry, data_dir=tmp_path, device=torch.device("cpu"), dtype=torch.float32)
    assert isinstance(pipe, StableDiffusionPipeline)
    assert tiny.is_built(tmp_path / "models" / "tiny")
    assert pipe.vae_scale_factor == 1  # latents at pixel resolution, like the shipped model
    ids = pipe.tokenizer("a red circle").input_ids
    assert ids[0] == pipe.tokenizer.bos_token_id and ids[-1] == pipe.tokenizer.eos_token_id


@pytest.mark.skipif(
    not registry.load().get("shapes").available(Path(".")), reason="the shipped model's weights are not built yet"
)
def test_the_shipped_model_loads_offline() -> None:
    entry = registry.load().get("shapes")
    pipe = loader.load_pipeline(entry, data_dir=Path("."), device=torch.device("cpu"), dtype=torch.float32)
    assert pipe.scheduler.config.prediction_type == "v_prediction"
