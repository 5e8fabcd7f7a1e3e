"""worker/worker.py as real processes: `imagine worker` twice on one queue, each job run exactly once; heartbeats."""

from __future__ import annotations

import dataclasses
import signal
import subprocess
from typing import Any

import pytest
import redis
from rq import Worker

from imagine import keys, queue
from imagine.contract import JobSpec, Started
from tests.helpers import events_of, start_worker, wait_for
from worker.worker import ImagineWorker

pytestmark = pytest.mark.slow


def _stop(procs: list[subprocess.Popen[bytes]]) -> str:
    """Warm-stop worker processes and return their output (for assertion messages)."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    logs = []
    for proc in procs:
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        logs.append(out.decode(errors="replace"))
    return "\n---\n".join(logs)


def test_two_worker_processes_share_one_queue_and_run_each_job_once(conn, settings, data_dir, tiny_dir) -> None:
    url = settings.redis_url_value()
    assert url
    procs = [start_worker(url, data_dir), start_worker(url, data_dir)]
    try:
        wait_for(lambda: Worker.count(connection=conn) == 2, timeout=90)
        jobs = [
            queue.enqueue(conn, JobSpec(prompt=f"shape {i}", model="tiny", steps=2, seed=i), settings) for i in range(8)
        ]
        results = [queue.wait(conn, job.id, timeout=120) for job in jobs]
    finally:
        logs = _stop(procs)
    assert all(p.returncode == 0 for p in procs), logs

    for job, result in zip(jobs, results, strict=True):
        assert result.seeds == [int(job.args[0]["seed"])]
        starts = [e for e in events_of(conn, job.id) if isinstance(e, Started)]
        assert len(starts) == 1, f"job {job.id} started {len(starts)} times"
        assert conn.hget(keys.job(job.id), "attempts") == b"1"
    by_worker: dict[str, list[bool]] = {}
    for result in results:
        by_worker.setdefault(result.worker, []).append(result.timings.loaded)
    assert len(by_worker) == 2, f"one worker took every job: {by_worker}"
    # Each process loaded its pipeline for its first job only, then kept it resident.
    for loads in by_worker.values():
        assert loads[0] is True and not any(loads[1:]), by_worker
    # Workers told the bot which models they have.
    assert b"tiny" in conn.hkeys(keys.MODELS)


def test_a_heartbeat_is_one_round_trip_that_keeps_the_worker_alive(redis_url, ctx, monkeypatch) -> None:
    with redis.Redis.from_url(redis_url) as client:
        worker = ImagineWorker([keys.IMAGE_QUEUE], ctx=dataclasses.replace(ctx, conn=client), sweep=False)
        single: list[tuple[Any, ...]] = []  # commands sent on their own, each a round trip (a pipeline's are not)
        send = client.execute_command

        def counted(*args: Any, **options: Any) -> Any:
            single.append(args)
            return send(*args, **options)

        monkeypatch.setattr(client, "execute_command", counted)
        worker.heartbeat()
        assert single == []
        assert client.hget(worker.key, "last_heartbeat")
        assert client.ttl(worker.key) > ctx.settings.worker_ttl  # RQ's worker_ttl + 60
        with client.pipeline() as pipe:  # inside RQ's own pipelines it adds to them as before
            worker.heartbeat(7, pipeline=pipe)
            assert len(pipe) == 3
            pipe.execute()
        assert 0 < client.ttl(worker.key) <= 7
