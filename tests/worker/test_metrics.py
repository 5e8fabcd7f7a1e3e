"""worker/metrics.py and bot/metrics.py: both `/metrics` endpoints are scraped over HTTP after real jobs ran, and
show their counts; the failures and workers they report are the ones `imagine status` prints."""

from __future__ import annotations

import asyncio
import re
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from prometheus_client import CollectorRegistry, generate_latest

from imagine import keys, queue, status
from imagine.contract import JobSpec, Requester
from tests.helpers import make_settings, run_burst
from worker import startup
from worker.context import WorkerContext
from worker.metrics import GpuMemory, WorkerMetrics, cause_of
from worker.worker import ImagineWorker


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        return response.read().decode()


def value(text: str, name: str, **labels: str) -> float:
    """The sample `name{labels...}` (labels in any order), or 0 when absent."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and line.split(" ")[0] != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.fixture
def fresh(conn, redis_url: str, data_dir: Path, tiny_dir: Path) -> Any:
    """A worker context of its own: its metrics start at zero."""
    settings = make_settings(redis_url, data_dir, worker_metrics_port=0)
    ctx = WorkerContext.create(settings, conn, name="metrics-worker")
    yield ctx
    ctx.metrics.close()


def test_the_worker_endpoint_shows_the_jobs_just_run(conn, fresh: WorkerContext) -> None:
    settings = fresh.settings
    port = fresh.metrics.serve("127.0.0.1", 0)
    assert port
    for seed in (1, 2):
        queue.enqueue(conn, JobSpec(prompt="a red circle", model="tiny", steps=2, seed=seed), settings)
    queue.enqueue(conn, JobSpec(prompt="x", model="nope", steps=2, seed=3), settings)
    queue.enqueue(conn, JobSpec(prompt="x", model="tiny", steps=2, seed=4, loras=("none",)), settings)
    run_burst(fresh)
    text = scrape(port)
    assert value(text, "imagine_jobs_total", model="tiny", kind="image", outcome="done") == 2
    assert value(text, "imagine_jobs_total", model="unknown", kind="image", outcome="failed") == 1
    assert value(text, "imagine_job_failures_total", model="unknown", cause="unknown_model") == 1
    assert value(text, "imagine_job_failures_total", model="tiny", cause="bad_request") == 1
    assert value(text, "imagine_job_duration_seconds_count", model="tiny", kind="image") == 3
    assert value(text, "imagine_job_wait_seconds_count", kind="image") == 4
    assert value(text, "imagine_model_load_seconds_count", model="tiny") == 1
    assert "imagine_gpu_memory_bytes" not in text  # a CPU worker has no card to report


def test_the_bot_endpoint_shows_the_deployment(conn, settings, ctx: WorkerContext) -> None:
    from bot.metrics import MetricsServer

    for seed in (5, 6):
        queue.enqueue(conn, JobSpec(prompt="x", model="tiny", steps=2, seed=seed), settings)
    queue.enqueue(conn, JobSpec(prompt="x", model="nope", seed=7), settings)
    run_burst(ctx)
    # Now three waiting jobs from two servers and one from the CLI, with nobody working.
    for guild, n in ((111, 2), (222, 1)):
        for i in range(n):
            spec = JobSpec(prompt="x", model="tiny", seed=i, requester=Requester(guild_id=guild, user_id=9))
            queue.enqueue(conn, spec, settings)
    queue.enqueue(conn, JobSpec(prompt="x", model="tiny", seed=1), settings)

    async def scrape_bot() -> str:
        server = MetricsServer(conn)
        port = await server.start("127.0.0.1", 0)
        try:
            return await asyncio.to_thread(scrape, port)
        finally:
            await server.close()

    text = asyncio.run(scrape_bot())
    assert value(text, "imagine_deployment_jobs_total", model="tiny", kind="image", outcome="done") == 2
    assert value(text, "imagine_deployment_jobs_total", model="unknown", outcome="failed") == 1
    assert value(text, "imagine_deployment_failures_total", cause="unknown_model") == 1
    assert value(text, "imagine_queue_waiting", queue=keys.IMAGE_QUEUE, guild="111") == 2
    assert value(text, "imagine_queue_waiting", queue=keys.IMAGE_QUEUE, guild="222") == 1
    assert value(text, "imagine_queue_waiting", queue=keys.IMAGE_QUEUE, guild="none") == 1
    assert value(text, "imagine_queue_oldest_wait_seconds", queue=keys.IMAGE_QUEUE) >= 0
    assert value(text, "imagine_redis_used_bytes") > 0
    assert value(text, "imagine_redis_family_keys", family="imagine:job:<id>") == 7  # every job's record
    assert value(text, "imagine_redis_family_bytes", family="rq:job:<id>") > 0


def test_status_prints_queues_workers_and_the_last_failures(conn, settings, ctx: WorkerContext) -> None:
    queue.enqueue(conn, JobSpec(prompt="x", model="nope", seed=1), settings)
    run_burst(ctx)
    ctx.pipelines.get(ctx.registry.get("tiny"))
    startup.describe(ctx, metrics_port=9101)
    queue.enqueue(conn, JobSpec(prompt="x", model="tiny", seed=1, requester=Requester(guild_id=42)), settings)
    text = status.render(conn)
    assert f"{keys.IMAGE_QUEUE}: 1 waiting, 0 running" in text and "by server: 42: 1" in text
    assert "last failures: 1" in text and "unknown_model" in text and "unknown model 'nope'" in text
    assert "redis memory: " in text and "largest key families:" in text and "  imagine:job:<id>: 2 keys, " in text
    failures = status.failures(conn)
    assert failures[0]["worker"] == "test-worker" and failures[0]["retrying"] is False
    # The burst worker has left RQ's list, so status shows no live worker; its description is there for one.
    assert status.workers(conn) == [] and conn.exists(keys.worker_info("test-worker"))
    live = ImagineWorker([keys.IMAGE_QUEUE], ctx=ctx)
    live.register_birth()
    live.set_state("idle")
    try:
        text = status.render(conn)
    finally:
        live.register_death()
    assert "workers: 1" in text
    line = next((ln.strip() for ln in text.splitlines() if ln.strip().startswith("test-worker:")), text)
    head, models = line.split("; models: ")
    assert re.fullmatch(rf"test-worker: idle on {keys.IMAGE_QUEUE}; cpu float32, \d+\.\d GiB resident", head), line
    # The worker context (and its pipelines) is shared by the whole session: other models may be resident too.
    resident, offers = models.removesuffix(", metrics :9101").split(" (offers ")
    assert models.endswith(", metrics :9101") and "tiny" in resident.split(", "), line
    assert offers.removesuffix(")").split(", ") == sorted(ctx.registry.models), line


def test_a_worker_describes_its_memory_on_cpu_and_cuda() -> None:
    rss = startup.memory_of(torch.device("cpu"))["rss"]
    assert 50 * 2**20 < rss < 64 * 2**30  # this test process has torch loaded: tens of MiB at least
    fake_cuda = SimpleNamespace(mem_get_info=lambda d: (60 * 2**30, 80 * 2**30))
    assert startup.memory_of(torch.device("cuda", 1), fake_cuda) == {"used": 20 * 2**30, "total": 80 * 2**30}
    assert status._memory({"used": 20 * 2**30, "total": 80 * 2**30}) == ", 20.0/80.0 GiB used"


def test_gpu_memory_is_read_at_scrape_time() -> None:
    fake_cuda = SimpleNamespace(
        memory_allocated=lambda d: 3 * 2**30,
        memory_reserved=lambda d: 4 * 2**30,
        max_memory_allocated=lambda d: 5 * 2**30,
        mem_get_info=lambda d: (60 * 2**30, 80 * 2**30),
    )
    registry = CollectorRegistry()
    registry.register(GpuMemory(torch.device("cuda", 1), fake_cuda))
    text = generate_latest(registry).decode()
    assert value(text, "imagine_gpu_memory_bytes", device="cuda:1", kind="allocated") == 3 * 2**30
    assert value(text, "imagine_gpu_memory_bytes", device="cuda:1", kind="total") == 80 * 2**30
    metrics = WorkerMetrics()
    metrics.watch_gpu(torch.device("cuda", 0), fake_cuda)
    assert "imagine_gpu_memory_bytes" in generate_latest(metrics.registry).decode()


def test_causes_are_a_fixed_list() -> None:
    from imagine.contract import SpecError
    from worker.gpu import OutOfMemory
    from worker.jobs import JobRefused

    assert cause_of(OutOfMemory("x")) == "out_of_memory"
    assert cause_of(SpecError("steps", "too many")) == "bad_request"
    assert cause_of(JobRefused("x")) == "refused"
    assert cause_of(RuntimeError("boom")) == "error"


def test_a_port_in_use_is_logged_not_fatal(caplog) -> None:
    first, second = WorkerMetrics(), WorkerMetrics()
    port = first.serve("127.0.0.1", 0)
    try:
        assert port is not None and second.serve("127.0.0.1", port) is None
        assert "not served" in caplog.text
    finally:
        first.close()
