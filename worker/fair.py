"""The workers' side of fair order: RQ's worker dequeues through `imagine.fair_queue.FairQueue`, which pops the fair
head (`imagine.fair`) and parks a paused server's job that RQ put back on its own list (a retry) instead of running
it. Here a job that is not one of ours is never read for parking: the worker fails it (`worker.allowed`).
"""

from __future__ import annotations

from redis import Redis
from rq.job import Job
from rq.queue import Queue

from imagine import fair_queue
from worker import allowed


class FairQueue(fair_queue.FairQueue):
    """The worker's `queue_class`: fair order, with untrusted jobs handed straight to the worker to refuse."""

    @classmethod
    def parks(cls, connection: Redis, queue: Queue, job: Job) -> bool:
        if allowed.refusal(job) is not None:
            return False
        return super().parks(connection, queue, job)
