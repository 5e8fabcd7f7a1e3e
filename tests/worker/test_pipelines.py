"""worker/pipelines.py: the LRU keeps pipelines resident and drops the least recently used; fresh samplers."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from diffusers import DPMSolverMultistepScheduler

from models import loader
from models.registry import ModelEntry
from worker import pipelines
from worker.pipelines import PipelineCache, Resident


def _entry(name: str, steps: int = 4) -> ModelEntry:
    return ModelEntry(name=name, source="tiny", width=32, height=32, steps=steps, guidance=4.0, sampler="euler")


def _loader(log: list[str]):  # type: ignore[no-untyped-def]
    def load(entry: ModelEntry) -> SimpleNamespace:
        log.append(entry.name)
        return SimpleNamespace(scheduler=SimpleNamespace(config={"name": entry.name}))

    return load


def test_hits_do_not_reload_and_the_oldest_is_evicted() -> None:
    loaded: list[str] = []
    cache = PipelineCache(_loader(loaded), capacity=2)
    a, fresh = cache.get(_entry("a"))
    assert fresh and a.scheduler_config == {"name": "a"}
    assert cache.get(_entry("a")) == (a, False)
    cache.get(_entry("b"))
    cache.get(_entry("a"))  # a is now the most recent
    cache.get(_entry("c"))  # evicts b
    assert cache.names() == ["a", "c"] and loaded == ["a", "b", "c"] and cache.loads == 3
    assert cache.get(_entry("b"))[1] is True and "a" not in cache


def test_a_changed_entry_is_reloaded() -> None:
    loaded: list[str] = []
    cache = PipelineCache(_loader(loaded), capacity=2)
    cache.get(_entry("a"))
    assert cache.get(_entry("a", steps=8))[1] is True
    assert loaded == ["a", "a"] and cache.names() == ["a"]


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError):
        PipelineCache(_loader([]), capacity=0)


def test_every_job_gets_a_fresh_sampler_built_once_per_name(monkeypatch) -> None:
    built: list[str] = []

    def make(name: str, config: object, family: object = None) -> object:
        built.append(name)
        return loader.make_scheduler(name, config, family)

    monkeypatch.setattr(pipelines, "make_scheduler", make)
    config = DPMSolverMultistepScheduler(beta_schedule="scaled_linear").config
    resident = Resident(_entry("a"), pipe=None, scheduler_config=config, load_s=0.0)
    first, second = resident.scheduler("dpm++_2m"), resident.scheduler("dpm++_2m")
    assert first is not second and dict(first.config) == dict(loader.make_scheduler("dpm++_2m", config).config)
    # A multistep sampler keeps state while it samples: what one job does to its copy stays there.
    first.set_timesteps(4)
    first.step(torch.zeros(1, 4, 8, 8), first.timesteps[0], torch.zeros(1, 4, 8, 8))
    assert len(second.timesteps) != 4 and second.step_index is None and second.model_outputs[-1] is None
    resident.scheduler("euler")
    assert built == ["dpm++_2m", "euler"]
