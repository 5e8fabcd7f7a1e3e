"""Which jobs a worker will run: only the project's own job functions, with nothing else attached.

RQ imports and calls whatever dotted name a job in Redis carries (and its success, failure and stopped callbacks,
and posts to its webhooks). Anyone who can write to Redis could then run code on every GPU machine. So before RQ
resolves anything, a job is checked here: its function must be one of `JOB_FUNCTIONS`, called as a plain function
(no instance), with no callbacks and no webhooks. Anything else fails at once, is logged with its id, and nothing
it names is ever imported.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

from rq.job import Job
from rq.serializers import JSONSerializer

from imagine import keys

if TYPE_CHECKING:
    from rq.executions import Execution
    from rq.queue import Queue

log = logging.getLogger(__name__)

#: The dotted names a worker runs (the bot and `imagine generate` enqueue only these).
JOB_FUNCTIONS = frozenset({keys.GENERATE_FUNC})


class UntrustedJob(Exception):
    """A job in Redis that names something other than the project's own job functions."""


def refusal(job: Job) -> str | None:
    """Why `job` must not run, or None when it is one of ours. Reads the job's data only: imports nothing."""
    try:
        func_name = job.func_name
        instance = job.instance
    except Exception as exc:  # data that does not load as JSON: not ours either
        return f"its data does not load ({type(exc).__name__})"
    if func_name not in JOB_FUNCTIONS:
        return f"it names the function {str(func_name)[:80]!r}, which is not one of the worker's job functions"
    if instance is not None:
        return "it names a method of an object"
    callbacks = (job._success_callback_name, job._failure_callback_name, job._stopped_callback_name)
    if any(callbacks):
        return "it carries callbacks"
    if job.webhooks:
        return "it carries webhooks"
    return None


def refuse(worker: Any, job: Job, queue: Queue, execution: Execution, reason: str) -> None:
    """Fail `job` at once, without retries and without importing or calling anything it names."""
    log.error("job %s refused and not run: %s", job.id, reason)
    # Nothing of the job's may run on the way out either: RQ's failure path calls the failure callback.
    job._success_callback_name = job._failure_callback_name = job._stopped_callback_name = None
    job._success_callback = job._failure_callback = job._stopped_callback = None  # type: ignore[assignment]
    job.webhooks = []
    job.retries_left = 0
    try:
        job.func_name  # noqa: B018 - loads the data, or fails to
    except Exception:  # RQ's bookkeeping reads the data again: give it something readable that names nothing
        job.data = JSONSerializer.dumps(("<unreadable job data>", None, [], {}))
    worker.prepare_job_execution(job, remove_from_intermediate_queue=len(worker.queues) == 1)
    try:
        raise UntrustedJob(f"refused: {reason}")
    except UntrustedJob:
        worker._finalize_failure(job, queue, execution, sys.exc_info())
