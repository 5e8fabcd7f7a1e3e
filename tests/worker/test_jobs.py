"""worker/jobs.py through the real queue: enqueue → resident in-process worker → result, against a real Redis."""

from __future__ import annotations

import io
import itertools
import json
import logging
from typing import Any

import pytest
import torch
from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
)
from PIL import Image
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from imagine import keys, progress, queue
from imagine.contract import Done, Failed, JobSpec, Progress, Requester, Started
from tests.helpers import events_of, make_settings, run_burst
from worker import jobs
from worker.context import WorkerContext
from worker.encoding import read_parameters


def tiny_spec(**fields: Any) -> JobSpec:
    return JobSpec(**{"prompt": "a red circle", "model": "tiny", "steps": 4, "seed": 7, **fields})


def test_a_job_goes_from_enqueue_to_result(conn, settings, ctx: WorkerContext) -> None:
    job = queue.enqueue(conn, tiny_spec(negative_prompt="blur"), settings)
    run_burst(ctx)
    result = queue.fetch_result(conn, job.id)
    assert result is not None
    assert result.job_id == job.id
    assert result.seeds == [7]
    assert result.spec.model == "tiny" and result.spec.sampler == "dpm++_2m" and result.spec.guidance == 4.0
    assert (result.native_width, result.native_height) == (32, 32)
    png = result.images[0].png_bytes()
    with Image.open(io.BytesIO(png)) as picture:
        assert picture.size == (128, 128)  # the registry's display_scale 4
    assert read_parameters(png) == (
        "a red circle\nNegative prompt: blur\n"
        "Steps: 4, Sampler: DPM++ 2M, CFG scale: 4, Seed: 7, Size: 32x32, Model: tiny"
    )
    record = conn.hgetall(keys.job(job.id))
    assert record[b"status"] == b"done" and record[b"attempts"] == b"1"
    assert json.loads(record[b"seeds"]) == [7]


def test_progress_events_arrive_in_order_with_previews(conn, settings, ctx: WorkerContext) -> None:
    job = queue.enqueue(conn, tiny_spec(), settings)
    run_burst(ctx)
    events = events_of(conn, job.id)
    assert isinstance(events[0], Started) and events[0].attempt == 1
    assert isinstance(events[-1], Done)
    steps = [e for e in events if isinstance(e, Progress)]
    assert [(e.step, e.total) for e in steps] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    # preview_every=2 in test settings; none on the last step (the result follows at once).
    assert [e.step for e in steps if e.preview_png] == [2]
    preview = Image.open(io.BytesIO(__import__("base64").b64decode(steps[1].preview_png)))
    assert max(preview.size) == 32


def test_wait_follows_events_to_the_result(conn, settings, ctx: WorkerContext) -> None:
    job = queue.enqueue(conn, tiny_spec(), settings)
    run_burst(ctx)
    seen: list[str] = []
    result = queue.wait(conn, job.id, timeout=10, on_event=lambda e: seen.append(e.type))
    assert result.seeds == [7]
    assert seen[0] == "started" and seen[-1] == "done"


def test_same_seed_gives_byte_identical_images(conn, settings, ctx: WorkerContext) -> None:
    first = queue.enqueue(conn, tiny_spec(seed=1234, count=2), settings)
    second = queue.enqueue(conn, tiny_spec(seed=1234, count=2), settings)
    other = queue.enqueue(conn, tiny_spec(seed=1235), settings)
    run_burst(ctx)
    a, b, c = (queue.fetch_result(conn, j.id) for j in (first, second, other))
    assert a and b and c
    assert [i.png for i in a.images] == [i.png for i in b.images]
    assert a.grid is not None and b.grid is not None and a.grid.png == b.grid.png
    assert a.images[0].png != a.images[1].png  # seed and seed+1 differ
    # seed+1 of a batch is the seed of another job's first image: same noise, same picture.
    assert _pixels(a.images[1].png_bytes()) == _pixels(c.images[0].png_bytes())


def _pixels(png: bytes) -> bytes:
    with Image.open(io.BytesIO(png)) as picture:
        return picture.tobytes()


def test_count_four_gives_a_two_by_two_grid_and_consecutive_seeds(conn, settings, ctx: WorkerContext) -> None:
    job = queue.enqueue(conn, tiny_spec(count=4, seed=10, steps=2), settings)
    run_burst(ctx)
    result = queue.fetch_result(conn, job.id)
    assert result is not None and result.grid is not None
    assert result.seeds == [10, 11, 12, 13]
    assert [i.seed for i in result.images] == [10, 11, 12, 13]
    assert (result.grid.width, result.grid.height) == (256, 256)
    assert "Seed: 10," in (read_parameters(result.grid.png_bytes()) or "")


@pytest.mark.parametrize("sampler", ["euler", "euler_a", "dpm++_2m", "dpm++_2m_karras", "ddim"])
def test_every_sampler_runs(conn, settings, ctx: WorkerContext, sampler: str) -> None:
    job = queue.enqueue(conn, tiny_spec(sampler=sampler, steps=2), settings)
    run_burst(ctx)
    result = queue.fetch_result(conn, job.id)
    assert result is not None and result.spec.sampler == sampler
    stock = {"euler": EulerDiscreteScheduler, "euler_a": EulerAncestralDiscreteScheduler, "ddim": DDIMScheduler}
    scheduler = ctx.pipelines.get(ctx.registry.get("tiny"))[0].pipe.scheduler
    assert isinstance(scheduler, stock.get(sampler, DPMSolverMultistepScheduler))


def test_worker_keeps_its_pipeline_across_jobs(conn, redis_url, data_dir, tiny_dir) -> None:
    fresh = WorkerContext.create(make_settings(redis_url, data_dir), conn, name="fresh-worker")
    settings = fresh.settings
    first = queue.enqueue(conn, tiny_spec(), settings)
    second = queue.enqueue(conn, tiny_spec(seed=8), settings)
    run_burst(fresh)
    a, b = queue.fetch_result(conn, first.id), queue.fetch_result(conn, second.id)
    assert a and b
    assert a.timings.loaded is True and a.timings.load_s > 0
    assert b.timings.loaded is False and b.timings.load_s == 0
    assert fresh.pipelines.loads == 1


def test_a_refused_payload_fails_at_once_and_is_not_retried(conn, settings, ctx: WorkerContext) -> None:
    # Written straight to the queue, past the enqueuer's checks: the worker checks again.
    job = queue.image_queue(conn).enqueue(
        keys.GENERATE_FUNC, {"prompt": "x", "steps": 10_000}, retry=__import__("rq").Retry(max=2)
    )
    run_burst(ctx)
    assert Job.fetch(job.id, connection=conn, serializer=JSONSerializer).get_status() == JobStatus.FAILED
    events = events_of(conn, job.id)
    assert [e.type for e in events] == ["started", "failed"]
    failed = events[-1]
    assert isinstance(failed, Failed) and not failed.retrying and failed.error.startswith("steps:")
    assert conn.hget(keys.job(job.id), "attempts") == b"1"
    with pytest.raises(queue.JobFailed, match="steps"):
        queue.wait(conn, job.id, timeout=5)


def test_an_unknown_model_is_refused_with_the_known_names(conn, settings, ctx: WorkerContext) -> None:
    job = queue.enqueue(conn, tiny_spec(model="nope"), settings)
    run_burst(ctx)
    with pytest.raises(queue.JobFailed) as failure:
        queue.wait(conn, job.id, timeout=5)
    assert "unknown model 'nope'" in failure.value.error and "tiny" in failure.value.error
    assert conn.hget(keys.job(job.id), "attempts") == b"1"


def test_a_transient_error_is_retried(conn, settings, ctx: WorkerContext, monkeypatch) -> None:
    calls = {"n": 0}
    real_get = ctx.pipelines.get

    def flaky_get(entry):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("CUDA out of memory (simulated)")
        return real_get(entry)

    monkeypatch.setattr(ctx.pipelines, "get", flaky_get)
    job = queue.enqueue(conn, tiny_spec(), settings)
    run_burst(ctx)
    result = queue.wait(conn, job.id, timeout=5)
    assert result.seeds == [7]
    types = [(e.type, getattr(e, "attempt", None), getattr(e, "retrying", None)) for e in events_of(conn, job.id)]
    assert types[:3] == [("started", 1, None), ("failed", None, True), ("started", 2, None)]
    assert types[-1][0] == "done"
    assert conn.hget(keys.job(job.id), "attempts") == b"2"


def test_the_interaction_token_is_never_logged_nor_kept(conn, settings, ctx: WorkerContext, caplog) -> None:
    secret = "tok-SECRET-abc123"
    spec = tiny_spec(requester=Requester(guild_id=1, user_id=2, interaction_token=secret))
    with caplog.at_level(logging.DEBUG):
        job = queue.enqueue(conn, spec, settings)
        run_burst(ctx)
    result = queue.fetch_result(conn, job.id)
    assert result is not None and result.spec.requester is not None
    assert result.spec.requester.interaction_token is None and result.spec.requester.user_id == 2
    assert secret not in caplog.text
    assert secret.encode() not in b"".join(conn.hvals(keys.job(job.id)))
    # Nor does the queue payload: the worker finds it in its own key while it lives (`imagine.tokens`).
    assert job.args[0]["requester"]["interaction_token"] is None


def _report_steps(
    ctx: WorkerContext, monkeypatch: pytest.MonkeyPatch, total: int, seconds_per_step: float
) -> tuple[list[Progress], list[float]]:
    """A `_Reporter` over `total` steps of the tiny model on a fake clock: (the events in Redis, when each round
    trip went, in fake seconds)."""
    pipe = ctx.pipelines.get(ctx.registry.get("tiny"))[0].pipe
    side = 32 // pipe.vae_scale_factor
    latents = torch.zeros(1, pipe.vae.config.latent_channels, side, side)
    now = [0.0]
    trips: list[float] = []
    publish = progress.publish_many

    def counted(conn: Any, events: Any) -> None:
        if events:
            trips.append(now[0])
        publish(conn, events)

    monkeypatch.setattr(jobs.progress, "publish_many", counted)
    reporter = jobs._Reporter(ctx, "reported", total=total, clock=lambda: now[0])
    with torch.no_grad():  # as on the sampler's side
        for index in range(total):
            now[0] += seconds_per_step
            reporter(pipe, index, None, {"latents": latents})
    reporter.flush()  # as `_run` does when the sampler returns
    return [e for _, e in progress.read(ctx.conn, "reported") if isinstance(e, Progress)], trips


def test_a_fast_sampler_gets_every_step_and_a_preview_in_two_round_trips(conn, ctx: WorkerContext, monkeypatch) -> None:
    # 20 steps in 0.4 s: steps 1 and 2 go with the preview (step 2), the rest with the last step.
    steps, trips = _report_steps(ctx, monkeypatch, total=20, seconds_per_step=0.02)
    assert [e.step for e in steps] == list(range(1, 21))
    assert [e.step for e in steps if e.preview_png] == [2]
    assert trips == pytest.approx([0.04, 0.4])


def test_a_slow_sampler_publishes_twice_a_second_and_a_preview_per_interval(
    conn, ctx: WorkerContext, monkeypatch
) -> None:
    steps, trips = _report_steps(ctx, monkeypatch, total=16, seconds_per_step=0.25)
    assert [e.step for e in steps] == list(range(1, 17))
    # preview_every=2, then no sooner than progress_interval (2 s) after the last: steps 2 (0.5 s) and 10 (2.5 s).
    assert [e.step for e in steps if e.preview_png] == [2, 10]
    gaps = [b - a for a, b in itertools.pairwise([0.0, *trips])]  # no event waits longer than FLUSH_S
    assert trips[-1] == pytest.approx(4.0) and max(gaps) <= jobs._Reporter.FLUSH_S + 1e-9
