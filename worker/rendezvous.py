"""Where a batch's members meet: one pipeline call for the sampler calls of several jobs (`worker.batching`).

Every pipeline call of an image job goes through `call`. Outside a batch it runs alone; inside one, the member's
thread waits at the batch's `Rendezvous` until every member has arrived or left (at most `PATIENCE_S` for the
first), and one thread runs one merged call: prompts, negative prompts and generators concatenated, each image
keeping its own generator so its noise is what it would have been alone; step callbacks are fanned back out to
each member on its own thread (`_StepRelay`), and the output is sliced back per member.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from queue import SimpleQueue
from typing import Any

from worker import speed

#: Seconds the first member at the sampler waits for the others before it starts without them.
PATIENCE_S = 10.0

_meetings: dict[int, Rendezvous] = {}  # thread id -> the rendezvous its job belongs to
_meetings_lock = threading.Lock()


def call(pipe: Any, **kwargs: Any) -> Any:
    """Call `pipe(**kwargs)`, merged with the other members' calls when this thread's job is in a batch.

    Every pipeline call of an image job goes through here, batched or not, so the CPU speed settings
    (`worker.speed`) apply the same way to both.
    """
    with _meetings_lock:
        meeting = _meetings.get(threading.get_ident())
    if meeting is None:
        return run_calls([_Call(pipe, kwargs)])[0]
    return meeting.call(pipe, kwargs)


@dataclass
class _Call:
    pipe: Any
    kwargs: dict[str, Any]
    result: Any = None
    error: BaseException | None = None
    done: bool = False
    taken: bool = False


@dataclass
class Rendezvous:
    """Members of one batch; `call` returns when the call that included this member's images is done."""

    expected: set[str]
    #: The member whose arrival at the sampler (or departure before it) calls `on_leader`, once.
    leader: str | None = None
    on_leader: Callable[[], None] | None = None
    patience_s: float = PATIENCE_S
    cond: threading.Condition = field(default_factory=threading.Condition)
    calls: list[_Call] = field(default_factory=list)
    running: bool = False
    #: Sizes of the pipeline calls made, in images (for tests and logs).
    batches: list[int] = field(default_factory=list)
    #: Thread id -> the job it works for.
    threads: dict[int, str] = field(default_factory=dict)

    @contextmanager
    def joined(self, job_id: str) -> Iterator[None]:
        """This thread works for `job_id` until the block ends; leaving unblocks members waiting for it."""
        ident = threading.get_ident()
        with _meetings_lock:
            _meetings[ident] = self
        self.threads[ident] = job_id
        try:
            yield
        finally:
            with _meetings_lock:
                _meetings.pop(ident, None)
            self.threads.pop(ident, None)
            self.leave(job_id)

    def leave(self, job_id: str) -> None:
        with self.cond:
            self.expected.discard(job_id)
            self.cond.notify_all()
        self._leader_ready(job_id)

    def _leader_ready(self, job_id: str) -> None:
        if job_id == self.leader and self.on_leader is not None:
            start, self.on_leader = self.on_leader, None
            start()

    def call(self, pipe: Any, kwargs: dict[str, Any]) -> Any:
        job_id = self.threads.get(threading.get_ident())
        mine = _Call(pipe, kwargs)
        with self.cond:
            if job_id is None or job_id not in self.expected:  # a second call of the same job, or a straggler
                late = True
            else:
                late = False
                self.expected.discard(job_id)
                self.calls.append(mine)
                self.cond.notify_all()
        if late:
            return run_calls([mine])[0]
        assert job_id is not None
        self._leader_ready(job_id)
        deadline = time.monotonic() + self.patience_s
        while True:
            with self.cond:
                while not mine.done:
                    if not self.running and (not self.expected or time.monotonic() >= deadline):
                        batch = [c for c in self.calls if not c.taken]
                        for c in batch:
                            c.taken = True
                        self.running = True
                        break
                    self.cond.wait(max(0.001, deadline - time.monotonic()) if not self.running else None)
                else:
                    if mine.error is not None:
                        raise mine.error
                    return mine.result
            try:
                self.batches.append(sum(_images(c) for c in batch))
                results = run_calls(batch)
                error: BaseException | None = None
            except BaseException as exc:  # every member of the batch fails with it
                results, error = [None] * len(batch), exc
            with self.cond:
                for c, result in zip(batch, results, strict=True):
                    c.result, c.error, c.done = result, error, True
                self.running = False
                self.cond.notify_all()


# --- Merging calls into one ------------------------------------------------------------------------------------

#: Arguments that may differ between calls merged into one; everything else must be equal.
_PER_CALL = {"prompt", "negative_prompt", "num_images_per_prompt", "generator", "callback_on_step_end"}


def _images(c: _Call) -> int:
    return int(c.kwargs.get("num_images_per_prompt") or 1)


def _mergeable(c: _Call) -> bool:
    gens = c.kwargs.get("generator")
    return (
        isinstance(c.kwargs.get("prompt"), str)
        and isinstance(gens, list)
        and len(gens) == _images(c)
        and isinstance(c.kwargs.get("negative_prompt") or "", str)
    )


def _signature(c: _Call) -> tuple[Any, ...]:
    rest = tuple(sorted((k, repr(v)) for k, v in c.kwargs.items() if k not in _PER_CALL))
    scheduler = c.pipe.scheduler
    return (id(c.pipe), type(scheduler).__name__, repr(dict(scheduler.config)), rest)


def run_calls(calls: list[_Call]) -> list[Any]:
    """Run the calls, merging those that can share one pipeline call; returns their outputs in order."""
    results: list[Any] = [None] * len(calls)
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, c in enumerate(calls):
        groups.setdefault(_signature(c) if _mergeable(c) else ("alone", i), []).append(i)
    for indices in groups.values():
        members = [calls[i] for i in indices]
        outs = [_run_alone(members[0])] if len(members) == 1 else _run_merged(members)
        for i, out in zip(indices, outs, strict=True):
            results[i] = out
    return results


def _run_alone(c: _Call) -> Any:
    kwargs = dict(c.kwargs)
    with _StepRelay.around(kwargs), speed.applied(c.pipe):
        return c.pipe(**kwargs)


def _run_merged(calls: list[_Call]) -> list[Any]:
    first = calls[0]
    pipe = first.pipe
    prompts: list[str] = []
    negatives: list[str] = []
    generators: list[Any] = []
    spans: list[tuple[int, int]] = []
    for c in calls:
        n = _images(c)
        spans.append((len(prompts), len(prompts) + n))
        prompts += [c.kwargs["prompt"]] * n
        negatives += [c.kwargs.get("negative_prompt") or ""] * n
        generators += c.kwargs["generator"]
    kwargs = {k: v for k, v in first.kwargs.items() if k not in _PER_CALL}
    callbacks = [c.kwargs.get("callback_on_step_end") for c in calls]
    if any(callbacks):
        kwargs["callback_on_step_end"] = _fan_out(callbacks, spans)
    # A fresh sampler: a multistep scheduler keeps state, and each member set its own fresh one on the shared pipe.
    pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config)
    with _StepRelay.around(kwargs), speed.applied(pipe):
        out = pipe(
            prompt=prompts,
            negative_prompt=negatives,
            num_images_per_prompt=1,
            generator=generators,
            **kwargs,
        )
    return [_slice(out, a, b, len(prompts)) for a, b in spans]


class _StepRelay:
    """Runs a call's step callbacks in order on a helper thread, so the sampler never waits for them.

    A job's step callback publishes progress to Redis (a round trip per step) and decodes a preview every few
    steps; on a busy machine that was a tenth of the job's time, spent with the sampler stopped. Here the sampler
    hands each step's tensors over and goes on (it makes new tensors every step, so they stay as they were). What
    a callback returns is ignored (ours return their input); the call returns only after every callback ran, so
    every progress event is in Redis before the result, and a callback's error fails the call as before.
    """

    def __init__(self, callback: Callable[..., Any]) -> None:
        self.callback = callback
        self.steps: SimpleQueue[tuple[Any, ...] | None] = SimpleQueue()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="step-callbacks", daemon=True)

    def __call__(self, pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        if self.error is not None:
            raise self.error
        self.steps.put((pipe, step, timestep, dict(tensors)))
        return tensors

    def _run(self) -> None:
        import torch

        with torch.no_grad():  # as inside the pipeline call (grad mode is per thread)
            while (item := self.steps.get()) is not None:
                if self.error is None:
                    try:
                        self.callback(*item)
                    except BaseException as exc:  # raised on the sampler's thread at its next step, or at the end
                        self.error = exc

    @classmethod
    @contextmanager
    def around(cls, kwargs: dict[str, Any]) -> Iterator[None]:
        """Replace `kwargs`' step callback with a relay for the block; wait for it to finish at the end."""
        callback = kwargs.get("callback_on_step_end")
        if callback is None:
            yield
            return
        relay = cls(callback)
        kwargs["callback_on_step_end"] = relay
        relay.thread.start()
        try:
            yield
        finally:
            relay.steps.put(None)
            relay.thread.join()
        if relay.error is not None:
            raise relay.error


def _fan_out(callbacks: list[Callable[..., Any] | None], spans: list[tuple[int, int]]) -> Callable[..., Any]:
    """One step callback for the batch: each member's own, seeing only its own images' tensors."""

    def on_step(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        for callback, (a, b) in zip(callbacks, spans, strict=True):
            if callback is not None:
                callback(pipe, step, timestep, {name: value[a:b] for name, value in tensors.items()})
        return tensors

    return on_step


def _slice(out: Any, a: int, b: int, total: int) -> Any:
    """A member's part of a pipeline output: every per-image list cut to its images."""
    values = {}
    for f in dataclasses.fields(out):
        value = getattr(out, f.name)
        values[f.name] = value[a:b] if isinstance(value, list | tuple) and len(value) == total else value
    return type(out)(**values)
