"""Fair order: which waiting job a worker takes next, so that one member (or one server) flooding the queue does
not make everyone else wait behind them.

How. RQ's queue list (`rq:queue:imagine:image`) stays the one thing workers pop from, in order, so RQ's worker,
positions (`LPOS`) and everything that reads them keep working; but every change to the queue rewrites that list
in fair order, atomically, in a Lua script (`imagine.fair_lua`). The order is start-time fair queueing (SFQ) at two
levels: servers share the workers equally, and within a server its members do. Each server and member has a tag
(how many turns it has had, in virtual time); the next job is the head of the member with the lowest tag in the
server with the lowest tag, ties to the longest waiting. A server or member that had nothing waiting starts at the
current virtual time (the tag of the last job taken), so idling earns no credit and a newcomer is served within
one turn. When a worker takes a job, the next rewrite notices it left the list and moves the tags on.

So member A's 5 jobs and member B's 1 job, B's sent after A's: B's job runs second (or first, if A's first was
already taken), never behind A's second, and two flooding members alternate. A job costs one turn whatever its
size; weighing turns by steps x pixels would be a small change in `plan`.

Why not priority lanes (a member's n-th job to the n-th RQ queue, workers listening high to low)? Lanes decide a
job's place once, at enqueue: a server with fifty members fills lane 0 and another server's first job waits behind
all fifty, and a flood of newcomers' first jobs can hold a waiting fourth job back for ever. SFQ decides at every
change, across servers as well as members, in one list that positions already read. The price: every enqueue is
O(waiting jobs) in Redis, which the queue-depth limits keep small: measured on a busy 2-core machine, 2.5 ms with
100 jobs waiting, 31 ms with 500, 43 ms with 1,000 (Redis serves nobody else meanwhile).

Paused servers: their waiting jobs leave the list (parked, in `meta`) and come back on resume; a job of a paused
server that reaches a worker anyway (RQ puts retries straight back on the list) is parked by the worker
(`worker.fair.FairQueue`). Admission (`imagine.admission`) runs in the same script as the insertion, so two
concurrent requests can never both slip under a limit.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import redis
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.serializers import JSONSerializer
from rq.utils import now as utcnow

from imagine import fair_lua, keys
from imagine.limits import GuildLimits

log = logging.getLogger(__name__)

#: Seconds the per-member hourly count looks back.
HOUR = 3600.0
#: TTL of the active-job sets (refreshed at each admission; a stale entry is pruned when read anyway).
ACTIVE_TTL = 2 * 24 * 3600
#: RQ statuses of a job that still holds a place (queued or running).
LIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


@dataclass(frozen=True)
class Admission:
    """The outcome of `submit`: `refused` names the limit that turned the job down ('' when admitted)."""

    refused: str
    retry_after: float
    #: 0-based place in the ready list, or None when parked (its server is paused) or refused.
    place: int | None


def _keys(queue_name: str) -> list[str]:
    return [
        f"{Queue.redis_queue_namespace_prefix}{queue_name}",
        keys.fair(queue_name, "meta"),
        keys.fair(queue_name, "served"),
        keys.fair(queue_name, "vt"),
        keys.PAUSED,
        keys.fair(queue_name, "seq"),
    ]


def _run(conn: redis.Redis, script: str, queue_name: str, extra_keys: list[str], args: list[Any]) -> Any:
    return conn.register_script(script)(keys=_keys(queue_name) + extra_keys, args=args)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def submit(
    conn: redis.Redis,
    queue: Queue,
    job: Job,
    *,
    guild_id: int,
    user_id: int,
    limits: GuildLimits | None,
    now: float | None = None,
) -> Admission:
    """Save `job` and, in one atomic step, check the counting limits and put it in its fair place.

    `limits` None: no limits (jobs from the CLI, which has no server). On a refusal the job is deleted again.
    """
    job.origin = queue.name
    job.enqueued_at = utcnow()
    with conn.pipeline() as pipe:
        pipe.sadd(queue.redis_queues_keys, queue.key)
        pipe.sadd(keys.FAIR_QUEUES, queue.name)
        job.set_status(JobStatus.QUEUED, pipeline=pipe)
        job.save(pipeline=pipe)
        pipe.execute()
    args: list[Any] = [job.id, str(guild_id), str(user_id), repr(now if now is not None else time.time())]
    if limits is None:
        args += ["", "", "", "", "", ""]
    else:
        args += [
            limits.member_active,
            limits.member_hourly,
            limits.queue_depth,
            1 if limits.paused_accepts else 0,
            repr(HOUR),
            ACTIVE_TTL,
        ]
    extra = [
        keys.member(guild_id, user_id, "active"),
        keys.member(guild_id, user_id, "hourly"),
        keys.guild(guild_id, "active"),
    ]
    refused, retry_after, place = (_text(v) for v in _run(conn, fair_lua.SUBMIT, queue.name, extra, args))
    if refused:
        conn.delete(job.key)
        return Admission(refused, float(retry_after), None)
    return Admission("", 0.0, int(place) if int(place) >= 0 else None)


def take_out(conn: redis.Redis, queue_name: str, job_id: str) -> dict[str, Any] | None:
    """Take a waiting (or parked) job out of the queue, so no worker can start it; its meta, or None when it was
    not waiting (a worker has it already, or it is unknown)."""
    found = _run(conn, fair_lua.CANCEL, queue_name, [], [job_id])
    if found is None:
        return None
    meta: dict[str, Any] = json.loads(_text(found))
    return meta


def queue_names(conn: redis.Redis) -> list[str]:
    names = {_text(n) for n in conn.smembers(keys.FAIR_QUEUES)} | {keys.IMAGE_QUEUE}
    return sorted(names)


def replan(conn: redis.Redis, guild_id: int | None = None) -> None:
    """Rewrite every queue's order (after a pause; with `guild_id`, bringing that server's parked jobs back)."""
    for name in queue_names(conn):
        _run(conn, fair_lua.REPLAN, name, [], ["" if guild_id is None else str(guild_id)])


def pause(conn: redis.Redis, guild_id: int) -> bool:
    """Pause a server's queue: its waiting jobs stay, but no worker starts them. False when already paused."""
    changed = bool(conn.sadd(keys.PAUSED, str(int(guild_id))))
    replan(conn)
    return changed


def resume(conn: redis.Redis, guild_id: int) -> bool:
    """Resume a server's queue: its parked jobs take their fair places again. False when it was not paused."""
    changed = bool(conn.srem(keys.PAUSED, str(int(guild_id))))
    replan(conn, guild_id)
    return changed


def is_paused(conn: redis.Redis, guild_id: int) -> bool:
    return bool(conn.sismember(keys.PAUSED, str(int(guild_id))))


def park_if_paused(conn: redis.Redis, queue: Queue, job: Job) -> bool:
    """For workers: True (and the job parked, not lost) when `job` belongs to a paused server."""
    guild_id, user_id = requester_of(job)
    if guild_id is None:
        return False
    parked = _run(
        conn, fair_lua.PARK, queue.name, [queue.intermediate_queue_key], [job.id, str(guild_id), str(user_id or 0)]
    )
    return bool(parked)


def requester_of(job: Job) -> tuple[int | None, int | None]:
    """(server id, member id) of a queued job, read from its payload; (None, None) when it has none."""
    try:
        requester = (job.args[0] or {}).get("requester") or {}
    except (IndexError, TypeError, AttributeError, ValueError):
        return None, None
    guild, user = requester.get("guild_id"), requester.get("user_id")
    return (int(guild) if guild is not None else None), (int(user) if user is not None else None)


def release(conn: redis.Redis, guild_id: int, user_id: int, job_id: str) -> None:
    """Free a cancelled job's places in its member's and server's counts at once (reads prune them anyway)."""
    with conn.pipeline() as pipe:
        pipe.zrem(keys.member(guild_id, user_id, "active"), job_id)
        pipe.zrem(keys.guild(guild_id, "active"), job_id)
        pipe.execute()


def order(conn: redis.Redis, queue_name: str = keys.IMAGE_QUEUE) -> list[str]:
    """The ready list as workers will take it (parked jobs are not in it)."""
    return [_text(i) for i in conn.lrange(f"{Queue.redis_queue_namespace_prefix}{queue_name}", 0, -1)]


def load_job(conn: redis.Redis, job_id: str) -> Job | None:
    try:
        return Job.fetch(job_id, connection=conn, serializer=JSONSerializer)
    except Exception:  # NoSuchJobError, or a hash RQ cannot read: either way, not a job we can act on
        return None
