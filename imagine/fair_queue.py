"""An RQ queue whose jobs wait in the fair structure (`imagine.fair`): RQ's worker dequeues through it, and its
count, job ids and positions read the fair order instead of RQ's plain list.

Dequeueing pops through `imagine.fair.pop` (RQ's own list first, then the fair head). Lua cannot block, so an idle
worker waits on a short "bell" list that every enqueue and resume rings (a BLPOP), and looks again at least every
`POLL_S` seconds for what RQ pushed on its own list without ringing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from redis import Redis
from redis.client import Pipeline
from rq.exceptions import DequeueTimeout
from rq.job import Job
from rq.queue import Queue

from imagine import fair

log = logging.getLogger(__name__)

#: Longest wait on the bell before an idle worker looks again.
POLL_S = 2.0


class FairQueue(Queue):
    """An RQ queue in fair order: the worker's `queue_class`, and what `imagine.queue.image_queue` returns."""

    @property
    def count(self) -> int:
        return fair.count(self.connection, self.name)

    def get_job_ids(self, offset: int = 0, length: int = -1) -> list[str]:
        """Waiting jobs in the order workers will take them (a replay: meant for the first few)."""
        if length == 0:
            return []
        n = self.count if length < 0 else offset + length
        return fair.head(self.connection, self.name, n)[offset:]

    def get_job_position(self, job_or_id: Job | str) -> int | None:
        job_id = job_or_id.id if isinstance(job_or_id, Job) else job_or_id
        return fair.position(self.connection, self.name, job_id)

    def push_job_id(self, job_id: str, pipeline: Pipeline | None = None, at_front: bool = False) -> None:
        """RQ's own push (a retry goes on RQ's list, read first by every pop), then ring the bell."""
        super().push_job_id(job_id, pipeline=pipeline, at_front=at_front)
        bell = fair.prefix(self.name) + "bell"
        conn = pipeline if pipeline is not None else self.connection
        conn.lpush(bell, "1")
        conn.ltrim(bell, 0, 63)

    @classmethod
    def parks(cls, connection: Redis, queue: Queue, job: Job) -> bool:
        """True (and `job` parked) when a job from RQ's own list belongs to a paused server."""
        return fair.park_if_paused(connection, queue, job)

    @classmethod
    def dequeue_any(  # type: ignore[override]
        cls,
        queues: Iterable[Queue],
        timeout: int | None,
        connection: Redis,
        job_class: type[Job] | None = None,
        serializer: Any = None,
        death_penalty_class: Any = None,
    ) -> tuple[Job, Queue] | None:
        """The next job of the first queue that has one; parks a paused server's job found on RQ's own list."""
        queues = list(queues)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            again = False
            for queue in queues:
                popped = fair.pop(connection, queue.name)
                if popped is None:
                    continue
                again = True
                job_id, from_front = popped
                result = cls._fetch_dequeued_job(
                    connection,
                    queue.key,
                    job_id,
                    job_class=job_class,
                    serializer=serializer,
                    death_penalty_class=death_penalty_class,
                )
                if result is None:
                    continue
                if from_front and cls.parks(connection, result[1], result[0]):
                    log.info("job %s belongs to a paused server: parked until it resumes", job_id)
                    continue
                return result
            if again:
                continue
            if deadline is None:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise DequeueTimeout(timeout, [q.key for q in queues])
            connection.blpop([fair.prefix(q.name) + "bell" for q in queues], timeout=min(left, POLL_S))
