"""Progress events on a per-job Redis stream: the worker appends, any number of readers follow.

A stream rather than pub/sub, because a reader that starts late (the bot after a restart, `imagine generate`
connecting after the worker began) still sees every event from the first, and nothing is lost between reads.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import redis

from imagine import keys
from imagine.contract import Done, Failed, Progress, Started, parse_event

log = logging.getLogger(__name__)

Event = Started | Progress | Done | Failed


def publish(conn: redis.Redis, event: Event) -> None:
    """Append `event` to its job's stream, trim it, and refresh the stream's TTL."""
    key = keys.progress(event.job_id)
    with conn.pipeline(transaction=False) as pipe:
        pipe.xadd(key, {"event": event.model_dump_json()}, maxlen=keys.PROGRESS_MAXLEN, approximate=True)
        pipe.expire(key, keys.PROGRESS_TTL)
        pipe.execute()


def publish_many(conn: redis.Redis, events: Sequence[Event]) -> None:
    """Append several events in one round trip (a job's steps come faster than a round trip each is worth)."""
    if not events:
        return
    with conn.pipeline(transaction=False) as pipe:
        for event in events:
            pipe.xadd(
                keys.progress(event.job_id),
                {"event": event.model_dump_json()},
                maxlen=keys.PROGRESS_MAXLEN,
                approximate=True,
            )
        for key in dict.fromkeys(keys.progress(event.job_id) for event in events):
            pipe.expire(key, keys.PROGRESS_TTL)
        pipe.execute()


def read(conn: redis.Redis, job_id: str, after: str = "0-0", block_ms: int | None = None) -> list[tuple[str, Event]]:
    """Events of `job_id` after stream id `after`, waiting up to `block_ms` for the first one (None: no wait)."""
    reply: Any = conn.xread({keys.progress(job_id): after}, block=block_ms)
    events: list[tuple[str, Event]] = []
    for _stream, entries in reply or []:
        for entry_id, fields in entries:
            eid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
            try:
                events.append((eid, parse_event(fields[b"event"])))
            except (KeyError, ValueError):
                log.warning("skipping a malformed progress event %s of job %s", eid, job_id)
    return events
