"""worker/pipelines.py: the LRU keeps pipelines resident and drops the least recently used."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from models.registry import ModelEntry
from worker.pipelines import PipelineCache


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
