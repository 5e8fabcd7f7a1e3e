"""What a server has in the queue, and taking jobs out of it: for `/queue`, `/cancel` and the moderators' commands.

Cancelling takes the job out of the fair queue in one atomic step first (`imagine.fair.take_out`), so no
worker can start it afterwards; only then is it marked cancelled in RQ and in its record, and the people waiting on
it (`imagine.queue.wait`, the bot) are told with a final `Failed` event. A job a worker already took is left to
finish: stopping a resident worker mid-job is not something RQ's SimpleWorker can do safely.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Literal

import redis
from rq.exceptions import InvalidJobOperation
from rq.job import JobStatus

from imagine import fair, keys, progress
from imagine.contract import Failed, JobSpec

log = logging.getLogger(__name__)

State = Literal["running", "waiting", "paused", "queued"]
Outcome = Literal["cancelled", "running", "gone"]


@dataclass(frozen=True)
class QueuedJob:
    """One of a server's jobs that is waiting or running."""

    job_id: str
    user_id: int | None
    prompt: str
    state: State
    #: 1-based place among all waiting jobs (every server's), for waiting ones.
    position: int | None
    #: Seconds since it was admitted.
    age_s: float
    channel_id: int | None = None
    message_id: int | None = None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def snapshot(conn: redis.Redis, guild_id: int, user_id: int | None = None) -> list[QueuedJob]:
    """The server's (or one member's) queued-or-running jobs: running first, then in the order workers take them."""
    key = keys.guild(guild_id, "active") if user_id is None else keys.member(guild_id, user_id, "active")
    raw: Any = conn.zrange(key, 0, -1, withscores=True)
    entries = [(_text(i), float(score)) for i, score in raw]
    if not entries:
        return []
    with conn.pipeline(transaction=False) as pipe:
        for job_id, _ in entries:
            pipe.hget(f"rq:job:{job_id}", "status")
            pipe.hmget(keys.job(job_id), "spec", "queue")
        replies = pipe.execute()
    now = time.time()
    found: list[QueuedJob] = []
    live: list[tuple[str, float, str, Any, str]] = []
    by_queue: dict[str, list[str]] = {}
    for (job_id, admitted), status, (spec_raw, queue_raw) in zip(entries, replies[::2], replies[1::2], strict=True):
        status_text = _text(status) if status is not None else ""
        if status_text not in {s.value for s in fair.LIVE} or spec_raw is None:
            continue
        queue_name = _text(queue_raw) if queue_raw is not None else keys.IMAGE_QUEUE
        live.append((job_id, admitted, status_text, spec_raw, queue_name))
        if status_text != JobStatus.STARTED.value:
            by_queue.setdefault(queue_name, []).append(job_id)
    places: dict[str, int | None] = {}
    for queue_name, ids in by_queue.items():  # one script per queue: O(log n) a job (see imagine.fair.places)
        places.update(fair.places(conn, queue_name, ids))
    for job_id, admitted, status_text, spec_raw, _ in live:
        spec = JobSpec.model_validate_json(spec_raw)
        r = spec.requester
        place = places.get(job_id)
        if status_text == JobStatus.STARTED.value:
            state: State = "running"
            position = None
        elif place is not None and place >= 0:
            state, position = "waiting", place + 1
        elif place == -1:
            state, position = "paused", None
        else:
            state, position = "queued", None
        found.append(
            QueuedJob(
                job_id=job_id,
                user_id=r.user_id if r else None,
                prompt=spec.prompt,
                state=state,
                position=position,
                age_s=max(0.0, now - admitted),
                channel_id=r.channel_id if r else None,
                message_id=r.message_id if r else None,
            )
        )
    rank = {"running": 0, "waiting": 1, "queued": 2, "paused": 3}
    found.sort(key=lambda j: (rank[j.state], j.position or 0, -j.age_s))
    return found


def cancel(conn: redis.Redis, job_id: str, *, reason: str) -> Outcome:
    """Cancel a waiting (or paused) job so that no worker runs it; `reason` is what its requester reads."""
    try:
        record = conn.hmget(keys.job(job_id), "spec", "queue")
    except ValueError:  # not one of our job ids
        return "gone"
    queue_name = _text(record[1]) if record[1] is not None else keys.IMAGE_QUEUE
    meta = fair.take_out(conn, queue_name, job_id)
    if meta is None:
        status = conn.hget(f"rq:job:{job_id}", "status")
        return "running" if status is not None and _text(status) == JobStatus.STARTED.value else "gone"
    job = fair.load_job(conn, job_id)
    if job is not None:
        with contextlib.suppress(InvalidJobOperation):  # cancelled already
            job.cancel()
    guild_id, user_id = meta.get("g"), meta.get("u")
    if (guild_id is None or user_id is None) and record[0] is not None:
        r = json.loads(record[0]).get("requester") or {}
        guild_id, user_id = r.get("guild_id"), r.get("user_id")
    if guild_id is not None and user_id is not None:
        fair.release(conn, int(guild_id), int(user_id), job_id)
    conn.hset(keys.job(job_id), mapping={"status": "cancelled", "error": reason})
    progress.publish(conn, Failed(job_id=job_id, error=reason, retrying=False, ts=time.time()))
    log.info("job %s cancelled (%s)", job_id, reason)
    return "cancelled"


def clear(conn: redis.Redis, guild_id: int, *, user_id: int | None = None, reason: str) -> list[QueuedJob]:
    """Cancel every waiting (or paused) job of the server, or of one member; the ones cancelled."""
    done = []
    for job in snapshot(conn, guild_id, user_id):
        if job.state != "running" and cancel(conn, job.job_id, reason=reason) == "cancelled":
            done.append(job)
    return done


def find(jobs: list[QueuedJob], text: str) -> QueuedJob | None:
    """The job whose id is `text`, or starts with it (ids are shown shortened), if exactly one does."""
    text = text.strip().lower()
    exact = [j for j in jobs if j.job_id == text]
    if exact:
        return exact[0]
    found = [j for j in jobs if text and j.job_id.startswith(text)]
    return found[0] if len(found) == 1 else None
