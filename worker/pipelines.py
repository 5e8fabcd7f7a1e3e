"""A small LRU of resident pipelines, by model name: loading is the slow part, so a worker loads once and reuses.

The least recently used pipeline is dropped when a new model would exceed the capacity (one or two fit a GPU).
"""

from __future__ import annotations

import copy
import gc
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from models import families
from models.families import Family
from models.loader import make_scheduler
from models.registry import ModelEntry
from worker import safety

log = logging.getLogger(__name__)


@dataclass
class Resident:
    """A loaded pipeline, the scheduler config it came with (samplers are rebuilt from it), and its load time.

    `family` is what the loaded pipeline turned out to be (an entry may say "auto"); `checker` is its detached
    safety checker, run per job by `worker.safety` when the NSFW policy asks for it.
    """

    entry: ModelEntry
    pipe: Any
    scheduler_config: Any
    load_s: float
    uses: int = field(default=0)
    family: Family | None = None
    checker: safety.Checker | None = None
    #: A scheduler per sampler name, built once; jobs get copies (`scheduler`).
    samplers: dict[str, Any] = field(default_factory=dict, repr=False)

    def scheduler(self, sampler: str) -> Any:
        """A fresh scheduler for `sampler` on this model's config (fresh: a multistep sampler keeps state).

        A copy of one built once: `from_config` inspects signatures, registers the config and computes the noise
        tables, about 2.5 ms a job on a busy CPU, where a copy takes a sixth of that.
        """
        prototype = self.samplers.get(sampler)
        if prototype is None:
            prototype = make_scheduler(sampler, self.scheduler_config, self.family)
            self.samplers[sampler] = prototype
        return copy.deepcopy(prototype)


class PipelineCache:
    """Keeps up to `capacity` pipelines; `get` loads on a miss and says whether it did."""

    def __init__(self, loader: Callable[[ModelEntry], Any], capacity: int = 2) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._loader = loader
        self.capacity = capacity
        self._items: OrderedDict[str, Resident] = OrderedDict()
        self.loads = 0
        #: Called after a model is loaded or dropped (the worker republishes what it holds).
        self.on_change: Callable[[], None] | None = None

    def __contains__(self, name: str) -> bool:
        return name in self._items

    def names(self) -> list[str]:
        """Resident model names, least recently used first."""
        return list(self._items)

    def get(self, entry: ModelEntry) -> tuple[Resident, bool]:
        """The resident pipeline for `entry`, loading it (and evicting the oldest) when absent."""
        resident = self._items.get(entry.name)
        if resident is not None and resident.entry == entry:
            self._items.move_to_end(entry.name)
            resident.uses += 1
            return resident, False
        if resident is not None:  # the registry entry changed under the same name: reload it
            self.drop(entry.name)
        while len(self._items) >= self.capacity:
            self.drop(next(iter(self._items)))
        start = time.perf_counter()
        pipe = self._loader(entry)
        resident = Resident(
            entry,
            pipe,
            pipe.scheduler.config,
            time.perf_counter() - start,
            uses=1,
            family=_family_of(entry, pipe),
            checker=safety.detach(pipe),
        )
        self._items[entry.name] = resident
        self.loads += 1
        log.info("model %r resident (loaded in %.2f s)", entry.name, resident.load_s)
        self._changed()
        return resident, True

    def drop(self, name: str) -> None:
        """Forget a pipeline and give its memory back."""
        resident = self._items.pop(name, None)
        if resident is None:
            return
        del resident
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        log.info("model %r evicted", name)
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            try:
                self.on_change()
            except Exception:  # telling others is a nicety: never fail a load for it
                log.warning("could not report the resident models", exc_info=True)

    def clear(self) -> None:
        for name in list(self._items):
            self.drop(name)


def _family_of(entry: ModelEntry, pipe: Any) -> Family | None:
    if entry.family_info is not None:
        return entry.family_info
    try:
        return families.of_pipeline(type(pipe).__name__)
    except families.UnknownFamily:
        return None
