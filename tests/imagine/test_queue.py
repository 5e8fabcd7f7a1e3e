"""imagine/queue.py against a real Redis: the payload is JSON, enqueueing is checked and idempotent."""

from __future__ import annotations

import json
import time
import zlib

import pytest
import redis
from rq.job import Job
from rq.serializers import JSONSerializer

from imagine import keys, progress, queue
from imagine.admission import Refused
from imagine.contract import Failed, JobSpec, Progress, Requester, SpecError
from imagine.settings import Settings


def test_the_job_payload_in_redis_is_json(conn, settings) -> None:
    spec = JobSpec(prompt="a red circle", seed=3, requester=Requester(guild_id=9, interaction_token="tok"))
    job = queue.enqueue(conn, spec, settings, job_id="job-1")
    raw = conn.hget("rq:job:job-1", "data")
    assert raw is not None
    text = zlib.decompress(raw)  # RQ compresses the serialized call; nothing else is in between
    assert not text.startswith(b"\x80"), "a pickle payload"
    func, instance, args, kwargs = json.loads(text)
    assert func == "worker.jobs.generate" and instance is None and kwargs == {}
    assert args == [spec.public()]  # never the interaction token: it waits in its own expiring key
    assert conn.get(keys.token("job-1")) == b"tok" and 0 < conn.ttl(keys.token("job-1")) <= 15 * 60
    assert job.description == "image job-1"  # not the call with its arguments (and the token)
    assert conn.hget("rq:job:job-1", "description") == b"image job-1"


def test_enqueue_fixes_the_seed_and_records_the_spec_without_secrets(conn, settings) -> None:
    spec = JobSpec(prompt="x", requester=Requester(user_id=5, interaction_token="tok-abc"))
    job = queue.enqueue(conn, spec, settings)
    seed = job.args[0]["seed"]
    assert isinstance(seed, int) and 0 <= seed < 2**32
    record = conn.hgetall(keys.job(job.id))
    stored = json.loads(record[b"spec"])
    assert stored["seed"] == seed and stored["requester"]["user_id"] == 5
    assert stored["requester"]["interaction_token"] is None
    assert record[b"status"] == b"queued"
    assert 0 < conn.ttl(keys.job(job.id)) <= settings.record_ttl
    assert queue.position(conn, job.id) == 0


def test_enqueue_checks_the_limits(conn, settings) -> None:
    from tests.helpers import make_settings

    strict = make_settings(settings.redis_url_value() or "", settings.data_dir, max_steps=5)
    with pytest.raises(SpecError) as refused:
        queue.enqueue(conn, JobSpec(prompt="x", steps=6), strict)
    assert refused.value.field == "steps"
    assert queue.image_queue(conn).count == 0


def test_enqueue_is_idempotent_per_job_id(conn, settings) -> None:
    first = queue.enqueue(conn, JobSpec(prompt="x", seed=1), settings, job_id="same")
    again = queue.enqueue(conn, JobSpec(prompt="x", seed=2), settings, job_id="same")
    assert again.id == first.id and again.args[0]["seed"] == 1
    assert queue.image_queue(conn).count == 1


def test_wait_raises_on_a_final_failure_and_reports_events(conn, settings) -> None:
    job = queue.enqueue(conn, JobSpec(prompt="x"), settings)
    progress.publish(conn, Progress(job_id=job.id, step=1, total=2, ts=time.time()))
    progress.publish(conn, Failed(job_id=job.id, error="retry me", retrying=True, ts=time.time()))
    progress.publish(conn, Failed(job_id=job.id, error="out of luck", retrying=False, ts=time.time()))
    seen = []
    with pytest.raises(queue.JobFailed) as failure:
        queue.wait(conn, job.id, timeout=5, on_event=seen.append)
    assert failure.value.error == "out of luck"
    assert [e.type for e in seen] == ["progress", "failed", "failed"]


def test_wait_times_out_when_no_worker_comes(conn, settings) -> None:
    job = queue.enqueue(conn, JobSpec(prompt="x"), settings)
    with pytest.raises(TimeoutError):
        queue.wait(conn, job.id, timeout=0.3, poll_s=0.1)


def test_wait_notices_a_job_that_vanished(conn, settings) -> None:
    with pytest.raises(queue.JobFailed, match="no longer known"):
        queue.wait(conn, "never-enqueued", timeout=5, poll_s=0.1)


def test_the_progress_stream_expires(conn) -> None:
    progress.publish(conn, Progress(job_id="j1", step=1, total=2, ts=1.0))
    assert 0 < conn.ttl(keys.progress("j1")) <= keys.PROGRESS_TTL
    assert Job.exists("j1", connection=conn) is False
    assert isinstance(progress.read(conn, "j1")[0][1], Progress)
    assert JSONSerializer.loads(JSONSerializer.dumps({"a": 1})) == {"a": 1}


def test_a_full_redis_refuses_new_jobs_politely_and_keeps_the_queued_ones(
    conn: redis.Redis, settings: Settings
) -> None:
    kept = queue.enqueue(conn, JobSpec(prompt="already in"), settings)
    conn.config_set("maxmemory", 1)  # every write is now over the limit (noeviction: refused, nothing dropped)
    try:
        with pytest.raises(Refused) as no:
            queue.enqueue(conn, JobSpec(prompt="one more"), settings)
    finally:
        conn.config_set("maxmemory", 0)
    assert no.value.limit == "redis_memory" and "storage is full" in no.value.message
    assert queue.image_queue(conn).get_job_ids() == [kept.id]
