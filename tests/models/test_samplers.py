"""models/samplers.py: every sampler runs every step count on the shipped model's cosine schedule and on SD's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from diffusers import DPMSolverMultistepScheduler

from imagine.settings import Settings
from models import loader
from models.families import DDPM_SAMPLERS
from models.samplers import KarrasDPMSolverMultistepScheduler

#: Stable Diffusion 2's schedule: `scaled_linear`, v-prediction, top sigma ~14.6.
SD = dict(
    DPMSolverMultistepScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", prediction_type="v_prediction"
    ).config
)
#: The shipped model's: `squaredcos_cap_v2`, v-prediction, top sigma ~20,000.
COSINE = json.loads(Path("models/shapes/weights/scheduler/scheduler_config.json").read_text(encoding="utf-8"))


def sample(name: str, config: dict, steps: int) -> torch.Tensor:
    """The scheduler loop alone, with a model that always predicts zero: cheap enough to try every step count."""
    scheduler = loader.make_scheduler(name, config)
    scheduler.set_timesteps(steps)
    generator = torch.Generator().manual_seed(steps)
    x = torch.randn(1, 4, 2, 2, generator=generator) * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        model_input = scheduler.scale_model_input(x, t)
        x = scheduler.step(torch.zeros_like(model_input), t, x, generator=generator).prev_sample
    return x


@pytest.mark.parametrize("config", [SD, COSINE], ids=["scaled_linear", "cosine"])
@pytest.mark.parametrize("name", DDPM_SAMPLERS)
def test_every_sampler_runs_every_step_count_a_member_may_ask_for(name: str, config: dict) -> None:
    """On the cosine schedule, DPM++ 2M Karras raised IndexError from 5 steps up and Euler ancestral gave NaN at 4."""
    for steps in range(1, Settings().max_steps + 1):
        assert torch.isfinite(sample(name, config, steps)).all(), f"{name} at {steps} steps"


def test_karras_sigmas_start_no_higher_than_the_papers() -> None:
    """From the cosine schedule's own top, most of the steps were spent on pure noise; SD's top is left alone."""
    cosine = loader.make_scheduler("dpm++_2m_karras", COSINE)
    cosine.set_timesteps(20)
    assert float(cosine.sigmas[0]) == pytest.approx(KarrasDPMSolverMultistepScheduler.SIGMA_MAX)
    assert len(set(cosine.timesteps.tolist())) == 20
    sd = loader.make_scheduler("dpm++_2m_karras", SD)
    sd.set_timesteps(20)
    assert float(sd.sigmas[0]) == pytest.approx(14.6, abs=0.1)


def test_euler_ancestral_keeps_the_samples_dtype_and_its_own_sigmas() -> None:
    """Only the step sizes are worked out in float64; what the pipeline sees is as before."""
    scheduler = loader.make_scheduler("euler_a", COSINE)
    scheduler.set_timesteps(4)
    x = torch.randn(1, 4, 2, 2) * scheduler.init_noise_sigma
    t = scheduler.timesteps[0]
    model_input = scheduler.scale_model_input(x, t)
    out = scheduler.step(torch.zeros_like(model_input), t, x).prev_sample
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert scheduler.sigmas.dtype == torch.float32
