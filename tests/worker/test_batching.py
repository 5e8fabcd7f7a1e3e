"""worker/batching.py through the real queue: waiting jobs that match share one sampler call, and each result, its
progress and its record are what the job would have had alone."""

from __future__ import annotations

import dataclasses
import io
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from PIL import Image
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from imagine import fair, keys, queue
from imagine.contract import Done, Failed, JobResult, JobSpec, Progress, Started
from tests.helpers import context_with, events_of, make_settings, run_burst
from worker import batching, rendezvous
from worker.context import WorkerContext
from worker.encoding import read_parameters
from worker.worker import ImagineWorker

PROMPTS = ["a red circle", "two green triangles", "a yellow star on black", "a blue square", "a white heart"]


def spec(i: int, **fields: Any) -> JobSpec:
    return JobSpec(**{"prompt": PROMPTS[i % len(PROMPTS)], "model": "tiny", "steps": 4, "seed": 100 + 7 * i, **fields})


@pytest.fixture
def sizes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Images per pipeline call made through `batching` (1 for an unbatched job)."""
    seen: list[int] = []
    real = rendezvous.run_calls

    def counting(calls: list[Any]) -> list[Any]:
        seen.append(sum(rendezvous._images(c) for c in calls))
        return real(calls)

    monkeypatch.setattr(rendezvous, "run_calls", counting)
    yield seen


def pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as picture:
        return np.asarray(picture.convert("RGB")).astype(int)


def results(conn: Any, jobs: list[Job]) -> list[JobResult]:
    found = [queue.fetch_result(conn, job.id) for job in jobs]
    assert all(r is not None for r in found)
    return found  # type: ignore[return-value]


def test_waiting_jobs_share_one_call_and_each_equals_its_run_alone(
    conn, settings, ctx: WorkerContext, redis_url, data_dir, sizes
) -> None:
    specs = [spec(0), spec(1, count=2, negative_prompt="blur"), spec(2), spec(3, count=3), spec(4)]
    alone = context_with(ctx, redis_url, data_dir, batch_max=1)
    solo_jobs = [queue.enqueue(conn, s, settings) for s in specs]
    run_burst(alone)
    assert sizes == [1, 2, 1, 3, 1]
    solo = results(conn, solo_jobs)

    sizes.clear()
    batched_jobs = [queue.enqueue(conn, s, settings) for s in specs]
    run_burst(context_with(ctx, redis_url, data_dir, batch_max=8))
    assert sizes == [8]
    batched = results(conn, batched_jobs)

    for one, many in zip(solo, batched, strict=True):
        assert one.seeds == many.seeds
        assert len(one.images) == len(many.images)
        for a, b in zip(one.images, many.images, strict=True):
            diff = np.abs(pixels(a.png_bytes()) - pixels(b.png_bytes()))
            assert diff.max() <= 2 and diff.mean() < 0.05, (diff.max(), diff.mean())
            assert read_parameters(a.png_bytes()) == read_parameters(b.png_bytes())
        assert (one.grid is None) == (many.grid is None)


def test_each_batched_job_reports_its_own_progress_record_and_result(
    conn, settings, ctx: WorkerContext, redis_url, data_dir, sizes
) -> None:
    jobs = [queue.enqueue(conn, spec(i), settings) for i in range(3)]
    run_burst(context_with(ctx, redis_url, data_dir, batch_max=8))
    assert sizes == [3]
    for i, job in enumerate(jobs):
        events = events_of(conn, job.id)
        assert isinstance(events[0], Started) and events[0].attempt == 1
        assert isinstance(events[-1], Done)
        steps = [e for e in events if isinstance(e, Progress)]
        assert [(e.step, e.total) for e in steps] == [(1, 4), (2, 4), (3, 4), (4, 4)]
        assert [e.step for e in steps if e.preview_png] == [2]
        assert all(e.job_id == job.id for e in events)
        record = conn.hgetall(keys.job(job.id))
        assert record[b"status"] == b"done" and record[b"attempts"] == b"1"
        assert Job.fetch(job.id, connection=conn, serializer=JSONSerializer).get_status() == JobStatus.FINISHED
        result = queue.wait(conn, job.id, timeout=5)
        assert result.job_id == job.id and result.seeds == [100 + 7 * i]
        assert f"Seed: {100 + 7 * i}," in (read_parameters(result.images[0].png_bytes()) or "")
    # Every job ran once and nothing is left behind in RQ's queues and registries.
    q = queue.image_queue(conn)
    assert q.count == 0 and conn.llen(q.intermediate_queue_key) == 0
    assert q.started_job_registry.count == 0
    assert sorted(q.finished_job_registry.get_job_ids()) == sorted(j.id for j in jobs)


def test_only_matching_jobs_next_in_line_join_and_the_batch_stops_at_batch_max(
    conn, settings, ctx: WorkerContext, redis_url, data_dir, sizes
) -> None:
    jobs = [
        queue.enqueue(conn, spec(0), settings),
        queue.enqueue(conn, spec(1, steps=3), settings),  # other steps: alone
        queue.enqueue(conn, spec(2, guidance=7.0), settings),  # other guidance: alone
        queue.enqueue(conn, spec(3, count=2), settings),
        queue.enqueue(conn, spec(4, count=2), settings),  # would make 5 images with a batch_max of 4
        queue.enqueue(conn, spec(0, sampler="euler"), settings),  # other sampler: alone
        queue.enqueue(conn, spec(1), settings),
    ]
    run_burst(context_with(ctx, redis_url, data_dir, batch_max=4))
    # A job that cannot join blocks the way (the queue is in fair order: reaching past it would start a flooding
    # member's later jobs before another member's first). So 0, 1 and 2 run alone, 3 and 4 together (2 + 2 images,
    # batch_max reached), then 5 and 6 alone.
    assert sizes == [1, 1, 1, 4, 1, 1]
    for job in jobs:
        assert queue.fetch_result(conn, job.id) is not None


def test_a_lone_job_starts_at_once_and_waits_no_longer_than_batch_wait(
    conn, settings, ctx: WorkerContext, redis_url, data_dir
) -> None:
    for wait_ms, bound in ((0, 0.5), (300, 0.3 + 0.5)):
        job = queue.enqueue(conn, spec(0), settings)
        worker = ImagineWorker([keys.IMAGE_QUEUE], ctx=context_with(ctx, redis_url, data_dir, batch_wait_ms=wait_ms))
        q = queue.image_queue(conn)
        dequeued = q.dequeue_any([q], None, connection=conn, serializer=JSONSerializer)
        assert dequeued is not None and dequeued[0].id == job.id
        started = time.monotonic()
        assert batching.gather(worker, dequeued[0], q) == []
        assert time.monotonic() - started < bound
        conn.flushdb()


def test_batch_wait_lets_a_job_arriving_just_after_join(
    conn, settings, ctx: WorkerContext, redis_url, data_dir
) -> None:
    import threading

    first = queue.enqueue(conn, spec(0), settings)
    worker = ImagineWorker([keys.IMAGE_QUEUE], ctx=context_with(ctx, redis_url, data_dir, batch_wait_ms=1000))
    q = queue.image_queue(conn)
    dequeued = q.dequeue_any([q], None, connection=conn, serializer=JSONSerializer)
    assert dequeued is not None and dequeued[0].id == first.id
    late = threading.Timer(0.1, lambda: queue.enqueue(conn, spec(1), settings, job_id="late-job"))
    late.start()
    try:
        claimed = batching.gather(worker, dequeued[0], q)
    finally:
        late.join()
    assert [j.id for j in claimed] == ["late-job"]
    # Claimed as RQ dequeues: out of the queue, into its intermediate list until the job starts.
    assert q.count == 0
    assert sorted(conn.lrange(q.intermediate_queue_key, 0, -1)) == sorted([b"late-job", first.id.encode()])


def test_a_job_taken_by_another_worker_is_not_claimed_again(conn, settings, ctx: WorkerContext) -> None:
    jobs = [queue.enqueue(conn, spec(i), settings) for i in range(3)]
    worker = ImagineWorker([keys.IMAGE_QUEUE], ctx=ctx)
    q = queue.image_queue(conn)
    leader = q.dequeue_any([q], None, connection=conn, serializer=JSONSerializer)
    assert leader is not None
    assert fair.pop(conn, keys.IMAGE_QUEUE) == (jobs[1].id, False)  # another worker got there first
    claimed = batching.gather(worker, leader[0], q)
    assert [j.id for j in claimed] == [jobs[2].id]


def test_a_companion_that_fails_before_the_sampler_does_not_hold_the_others(
    conn, settings, ctx: WorkerContext, redis_url, data_dir, sizes, monkeypatch
) -> None:
    once = make_settings(redis_url, data_dir, job_retries=0)
    jobs = [queue.enqueue(conn, spec(i), once) for i in range(3)]
    real_get = ctx.pipelines.get
    doomed = jobs[1].id

    def get(entry):  # type: ignore[no-untyped-def]
        from rq import get_current_job

        current = get_current_job()
        if current is not None and current.id == doomed:
            raise RuntimeError("simulated failure before sampling")
        return real_get(entry)

    monkeypatch.setattr(ctx.pipelines, "get", get)
    run_burst(context_with(ctx, redis_url, data_dir, batch_max=8))
    assert sizes == [2]
    assert queue.fetch_result(conn, jobs[0].id) is not None and queue.fetch_result(conn, jobs[2].id) is not None
    failed = events_of(conn, doomed)[-1]
    assert isinstance(failed, Failed) and not failed.retrying
    assert Job.fetch(doomed, connection=conn, serializer=JSONSerializer).get_status() == JobStatus.FAILED


def test_a_failed_batch_call_fails_every_member_and_each_is_retried(
    conn, settings, ctx: WorkerContext, redis_url, data_dir, monkeypatch
) -> None:
    jobs = [queue.enqueue(conn, spec(i), settings) for i in range(3)]
    real = rendezvous._run_merged
    calls = {"n": 0}

    def flaky(members: list[Any]) -> list[Any]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("simulated out of memory")
        return real(members)

    monkeypatch.setattr(rendezvous, "_run_merged", flaky)
    run_burst(context_with(ctx, redis_url, data_dir, batch_max=8))
    for job in jobs:
        result = queue.wait(conn, job.id, timeout=5)
        assert result.job_id == job.id
        types = [e.type for e in events_of(conn, job.id)]
        assert types[:3] == ["started", "failed", "started"] and types[-1] == "done"
        assert conn.hget(keys.job(job.id), "attempts") == b"2"


# --- The merge itself, on a stand-in pipeline (no model): who gets which images, and the step callbacks. --------


class _Scheduler:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> _Scheduler:
        return cls(dict(config))


@dataclasses.dataclass
class _Out:
    images: list[str]
    nsfw_content_detected: list[bool] | None


class _Pipe:
    """Records its calls; image i is '<prompt>|<negative>|<seed>', and step s's latents are [[i + 100 s], …]."""

    def __init__(self) -> None:
        self.scheduler = _Scheduler({"beta": 1})
        self.calls: list[dict[str, Any]] = []

    def __call__(self, prompt: Any, negative_prompt: Any = None, num_images_per_prompt: int = 1, **kwargs: Any) -> _Out:
        import torch

        self.calls.append({"prompt": prompt, "negative_prompt": negative_prompt, **kwargs})
        prompts = [prompt] * num_images_per_prompt if isinstance(prompt, str) else list(prompt)
        negatives = negative_prompt if isinstance(negative_prompt, list) else [negative_prompt or ""] * len(prompts)
        seeds = [g.initial_seed() for g in kwargs["generator"]]
        callback = kwargs.get("callback_on_step_end")
        for step in range(kwargs.get("num_inference_steps", 3)):
            if callback is not None:
                latents = torch.tensor([[float(i + 100 * step)] for i in range(len(prompts))])
                callback(self, step, 999 - step, {"latents": latents})
        return _Out([f"{p}|{n}|{s}" for p, n, s in zip(prompts, negatives, seeds, strict=True)], [False] * len(prompts))


def _call(pipe: _Pipe, prompt: str, seeds: list[int], **kwargs: Any) -> rendezvous._Call:
    import torch

    generators = [torch.Generator().manual_seed(s) for s in seeds]
    args = {"prompt": prompt, "num_images_per_prompt": len(seeds), "generator": generators, "num_inference_steps": 3}
    return rendezvous._Call(pipe, {**args, **kwargs})


def test_matching_calls_merge_into_one_and_each_gets_its_own_images() -> None:
    pipe = _Pipe()
    calls = [
        _call(pipe, "a", [1, 2]),
        _call(pipe, "b", [3], negative_prompt="blur"),
        _call(pipe, "c", [4], num_inference_steps=2),  # other steps: its own call
    ]
    outs = rendezvous.run_calls(calls)
    assert [c["prompt"] for c in pipe.calls] == [["a", "a", "b"], "c"]
    assert pipe.calls[0]["negative_prompt"] == ["", "", "blur"]
    assert outs[0].images == ["a||1", "a||2"] and outs[0].nsfw_content_detected == [False, False]
    assert outs[1].images == ["b|blur|3"]
    assert outs[2].images == ["c||4"]


def test_step_callbacks_run_in_order_and_see_only_their_own_images() -> None:
    pipe = _Pipe()
    seen: dict[str, list[tuple[int, list[float]]]] = {"a": [], "b": []}

    def recorder(name: str) -> Any:
        def on_step(p: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            time.sleep(0.01)  # slower than the sampler: the call must still wait for every step
            seen[name].append((step, tensors["latents"].flatten().tolist()))
            return tensors

        return on_step

    rendezvous.run_calls(
        [
            _call(pipe, "a", [1, 2], callback_on_step_end=recorder("a")),
            _call(pipe, "b", [3], callback_on_step_end=recorder("b")),
        ]
    )
    assert seen["a"] == [(0, [0.0, 1.0]), (1, [100.0, 101.0]), (2, [200.0, 201.0])]
    assert seen["b"] == [(0, [2.0]), (1, [102.0]), (2, [202.0])]


def test_a_step_callback_error_fails_the_call() -> None:
    def broken(p: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        raise ConnectionError("Redis went away")

    with pytest.raises(ConnectionError, match="Redis went away"):
        rendezvous.run_calls([_call(_Pipe(), "a", [1], callback_on_step_end=broken)])


def test_a_member_that_never_reaches_the_sampler_is_waited_for_only_patience_s() -> None:
    pipe = _Pipe()
    meeting = rendezvous.Rendezvous({"here", "lost"}, patience_s=0.2)
    with meeting.joined("here"):
        started = time.monotonic()
        out = rendezvous.call(pipe, **_call(pipe, "a", [5]).kwargs)
        waited = time.monotonic() - started
    assert out.images == ["a||5"] and meeting.batches == [1]
    assert 0.2 <= waited < 5
