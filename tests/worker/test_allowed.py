"""worker/allowed.py: a real `imagine worker` runs only the project's own job functions; crafted jobs fail unrun."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from rq import Queue
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from imagine import keys, queue
from imagine.contract import JobSpec
from tests.helpers import ROOT, worker_env
from worker import allowed

pytestmark = pytest.mark.slow


def _crafted(conn, func: str, *args: object, **extra: object) -> Job:
    """What an attacker with write access to Redis would put on the queue (RQ's own client, our queue)."""
    rq_queue = Queue(keys.IMAGE_QUEUE, connection=conn, serializer=JSONSerializer)
    job = rq_queue.create_job(func, args=args, **extra)
    return rq_queue.enqueue_job(job)


def test_a_worker_fails_crafted_jobs_without_importing_or_running_them(conn, settings, data_dir, tiny_dir, tmp_path):
    mark, touched = tmp_path / "imported", tmp_path / "touched"
    # The real job first: a fair-order rewrite of the queue (at every enqueue of ours) keeps only our jobs.
    good = queue.enqueue(conn, JobSpec(prompt="x", model="tiny", steps=2, seed=1), settings)
    jobs = [
        _crafted(conn, "os.system", f"touch {touched}"),
        _crafted(conn, "tests.worker.untrusted_module.run"),
        # The right function, with the attacker's code as its failure callback (RQ imports and calls it).
        _crafted(
            conn,
            keys.GENERATE_FUNC,
            {"prompt": "x", "steps": 10_000},
            on_failure=__import__("rq").Callback("tests.worker.untrusted_module.run"),
        ),
    ]
    garbage = _crafted(conn, "os.getcwd")
    conn.hset(garbage.key, "data", b"\x80not json")  # data that does not even load
    url = settings.redis_url_value()
    assert url
    proc = subprocess.run(
        [sys.executable, "-m", "imagine", "worker", "--burst"],
        cwd=ROOT,
        env=worker_env(url, data_dir, ALLOWLIST_TEST_MARK=str(mark)),
        capture_output=True,
        timeout=300,
    )
    out = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, out
    assert not mark.exists() and not touched.exists(), out  # nothing imported, nothing run
    for job in [*jobs, garbage]:
        assert Job.fetch(job.id, connection=conn, serializer=JSONSerializer).get_status() == JobStatus.FAILED, out
        assert f"job {job.id} refused and not run" in out
        assert conn.hget(keys.job(job.id), "attempts") is None  # never reached the job function
    assert queue.wait(conn, good.id, timeout=5).seeds == [1]  # the worker went on with the real job


def test_the_check_reads_names_only(conn) -> None:
    ok = Job.create(keys.GENERATE_FUNC, args=({"prompt": "x"},), connection=conn, serializer=JSONSerializer)
    assert allowed.refusal(ok) is None
    bad = Job.create("tests.worker.untrusted_module.run", connection=conn, serializer=JSONSerializer)
    assert "not one of the worker's job functions" in str(allowed.refusal(bad))
    assert "tests.worker.untrusted_module" not in sys.modules
    hooked = Job.create(
        keys.GENERATE_FUNC,
        connection=conn,
        serializer=JSONSerializer,
        on_success=__import__("rq").Callback("os.getcwd"),
    )
    assert allowed.refusal(hooked) == "it carries callbacks"
    assert json.dumps(sorted(allowed.JOB_FUNCTIONS)) == json.dumps([keys.GENERATE_FUNC])
    assert Path(ROOT / "tests" / "worker" / "untrusted_module.py").exists()
