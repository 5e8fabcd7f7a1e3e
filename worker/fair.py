"""The workers' side of fair order: skip the jobs of paused servers without losing them.

The queue list is already in fair order (`imagine.fair`), and a paused server's waiting jobs are already out of it;
but RQ puts a retried job straight back on the list, so one of a paused server can still reach a worker. This
queue class parks such a job (it waits with the server's others, and comes back on resume) and takes the next one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from redis import Redis
from rq.job import Job
from rq.queue import Queue

from imagine import fair
from worker import allowed

log = logging.getLogger(__name__)


class FairQueue(Queue):
    """An RQ queue whose dequeue parks paused servers' jobs (the worker's `queue_class`)."""

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
        queues = list(queues)
        while True:
            result = super().dequeue_any(
                queues,
                timeout,
                connection=connection,
                job_class=job_class,
                serializer=serializer,
                death_penalty_class=death_penalty_class,
            )
            if result is None:
                return None
            job, queue = result
            if allowed.refusal(job) is not None:  # not one of ours: the worker fails it without reading more
                return result
            if not fair.park_if_paused(connection, queue, job):
                return result
            log.info("job %s belongs to a paused server: parked until it resumes", job.id)
