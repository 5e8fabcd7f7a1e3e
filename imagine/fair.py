"""Fair order: which waiting job a worker takes next, so that one member (or one server) flooding the queue does
not make everyone else wait behind them, at a cost that does not grow with the queue.

The rules: start-time fair queueing (SFQ) at two levels. Servers share the workers equally, and within a server its
members do. Each server and member has a tag (how many turns it has had, in virtual time); the next job is the
first job of the member with the lowest tag in the server with the lowest tag, ties to the one whose next job has
waited longest. Serving a job moves its server's and its member's tags one turn on, and the virtual times (global,
and the server's for its members) up to the tags it was served at. A server or member that had nothing waiting
starts at the current virtual time, or at its own tag if that is still ahead: idling earns no credit, and a
newcomer is served within one turn. A server with nothing waiting forgets its members' tags (no credit or debt
across an idle spell). So member A's 5 jobs and member B's 1 job, B's sent after A's: B's job runs second (or
first, if A's first was already taken), never behind A's second, and two flooding members alternate.

The structure (`imagine.fair_lua` names every key): each member's waiting jobs in a sorted set by arrival, each
server's members in a sorted set by tag, and the servers with jobs ready in a sorted set by tag. Enqueue, the
worker's pop, cancel, pause and resume each touch one job, one member and one server: O(log n) in what waits,
in one Lua script each (admission runs in the same script as the enqueue, so two concurrent requests can never
both slip under a limit). The order is never written out: a pop takes the head of the sorted sets.

RQ stays the job engine: jobs are RQ jobs, a pop moves the job to RQ's intermediate list as RQ's dequeue does,
and RQ's own list for the queue stays a front lane that every pop reads first: what RQ puts back itself (a retry,
`Retry(enqueue_at_front=True)`, or the reaper's requeue) has had its turn and runs next. A job of a paused server
found there is parked among its member's waiting jobs (`park_if_paused`). Workers pop through
`imagine.fair_queue.FairQueue`.

Paused servers leave the servers' sorted set (their jobs stay where they are) and come back on resume.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import redis
from redis.commands.core import Script
from rq.intermediate_queue import IntermediateQueue
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.serializers import JSONSerializer
from rq.utils import now as utcnow

from imagine import fair_lua, fair_read, keys
from imagine.limits import GuildLimits

#: Seconds the per-member hourly count looks back.
HOUR = 3600.0
#: TTL of the active-job sets (refreshed at each admission; a stale entry is pruned when read anyway).
ACTIVE_TTL = 2 * 24 * 3600
#: RQ statuses of a job that still holds a place (queued or running).
LIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}
#: Places replayed exactly by `places`; those further back are estimates.
EXACT_PLACES = 20

_scripts: dict[str, Script] = {}


@dataclass(frozen=True)
class Admission:
    """The outcome of `submit`: `refused` names the limit that turned the job down ('' when admitted)."""

    refused: str
    retry_after: float


def prefix(queue_name: str) -> str:
    """The key prefix of one queue's fair structure (`v2:`: the list-rewriting scheduler before it used other
    shapes under the same names; see `upgrade`)."""
    return keys.fair(queue_name, "v2:")


def front_key(queue_name: str) -> str:
    """RQ's own list for the queue: the front lane (retries)."""
    return f"{Queue.redis_queue_namespace_prefix}{queue_name}"


def _run(conn: redis.Redis, script: str, queue_name: str, args: list[Any], extra_keys: list[str] | None = None) -> Any:
    runner = _scripts.get(script)
    if runner is None:
        runner = _scripts[script] = conn.register_script(script)
    front = front_key(queue_name)
    base = [front, IntermediateQueue.get_intermediate_queue_key(front), keys.PAUSED]
    return runner(keys=base + (extra_keys or []), args=[prefix(queue_name), *args], client=conn)


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
    global_cap: int | None = None,
    now: float | None = None,
) -> Admission:
    """Save `job` and, in one atomic step, check the counting limits and put it in its fair place.

    `limits` None: no server limits (jobs from the CLI, which has no server). `global_cap`: the most jobs that may
    wait in the whole queue. On a refusal the job is deleted again.
    """
    job.origin = queue.name
    job.enqueued_at = utcnow()
    with conn.pipeline() as pipe:
        pipe.sadd(queue.redis_queues_keys, queue.key)
        pipe.sadd(keys.FAIR_QUEUES, queue.name)
        job.set_status(JobStatus.QUEUED, pipeline=pipe)
        job.save(pipeline=pipe)
        pipe.execute()
    args = _admission_args(job.id, guild_id, user_id, limits, global_cap, now)
    extra = _admission_keys(guild_id, user_id)
    refused, retry_after = (_text(v) for v in _run(conn, fair_lua.SUBMIT, queue.name, args, extra))
    if refused:
        conn.delete(job.key)
        return Admission(refused, float(retry_after))
    return Admission("", 0.0)


def probe(
    conn: redis.Redis,
    queue_name: str,
    *,
    guild_id: int,
    user_id: int,
    limits: GuildLimits,
    global_cap: int | None = None,
) -> Admission:
    """What `submit` would answer for one more job of this member now, placing nothing.

    A look ahead for callers that must show something before they enqueue (a reaction's public status message):
    `submit` still decides, atomically, so two requests at once may both pass here and one be refused there.
    """
    args = [*_admission_args("", guild_id, user_id, limits, global_cap, None), "1"]
    extra = _admission_keys(guild_id, user_id)
    refused, retry_after = (_text(v) for v in _run(conn, fair_lua.SUBMIT, queue_name, args, extra))
    return Admission(refused, float(retry_after))


def _admission_args(
    job_id: str, guild_id: int, user_id: int, limits: GuildLimits | None, global_cap: int | None, now: float | None
) -> list[Any]:
    """SUBMIT's ARGV after the prefix (see `imagine.fair_lua.SUBMIT`)."""
    args: list[Any] = [job_id, str(guild_id), str(user_id), repr(now if now is not None else time.time())]
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
    args.append("" if global_cap is None else global_cap)
    return args


def _admission_keys(guild_id: int, user_id: int) -> list[str]:
    return [
        keys.member(guild_id, user_id, "active"),
        keys.member(guild_id, user_id, "hourly"),
        keys.guild(guild_id, "active"),
    ]


def place(conn: redis.Redis, queue_name: str, job_id: str, guild_id: int, user_id: int) -> None:
    """Put a job id in its fair place with no admission checks and no RQ record (benchmarks, the model test)."""
    _run(
        conn,
        fair_lua.SUBMIT,
        queue_name,
        _admission_args(job_id, guild_id, user_id, None, None, None),
        _admission_keys(guild_id, user_id),
    )


def pop(conn: redis.Redis, queue_name: str, expected: str | None = None) -> tuple[str, bool] | None:
    """Take the next job for a worker (onto RQ's intermediate list): (job id, whether it came from RQ's own list),
    or None when nothing is ready. With `expected`, only if that job is next (a batching worker's companion)."""
    found = _run(conn, fair_lua.POP, queue_name, [expected] if expected else [])
    if not found:
        return None
    return _text(found[0]), _text(found[1]) == "front"


def take_out(conn: redis.Redis, queue_name: str, job_id: str) -> dict[str, Any] | None:
    """Take a waiting (or paused) job out of the queue, so no worker can start it: {'g': server, 'u': member}
    ({} when it was on RQ's own list only), or None when it was not waiting (a worker has it, or it is unknown)."""
    found = _run(conn, fair_lua.CANCEL, queue_name, [job_id])
    if found is None or found is False:
        return None
    where = _text(found)
    if not where:
        return {}
    guild, user = where.split(":", 1)
    return {"g": guild, "u": user}


def queue_names(conn: redis.Redis) -> list[str]:
    names = {_text(n) for n in conn.smembers(keys.FAIR_QUEUES)} | {keys.IMAGE_QUEUE}
    return sorted(names)


def pause(conn: redis.Redis, guild_id: int) -> bool:
    """Pause a server's queue: its waiting jobs stay, but no worker starts them. False when already paused."""
    return any([bool(_run(conn, fair_lua.PAUSE, n, [str(int(guild_id)), "1"])) for n in queue_names(conn)])


def resume(conn: redis.Redis, guild_id: int) -> bool:
    """Resume a server's queue: its jobs take their fair places again. False when it was not paused."""
    return any([bool(_run(conn, fair_lua.PAUSE, n, [str(int(guild_id)), "0"])) for n in queue_names(conn)])


def is_paused(conn: redis.Redis, guild_id: int) -> bool:
    return bool(conn.sismember(keys.PAUSED, str(int(guild_id))))


def park_if_paused(conn: redis.Redis, queue: Queue, job: Job) -> bool:
    """For workers: True (and the job parked, not lost) when `job`, taken from RQ's own list, belongs to a paused
    server."""
    guild_id, user_id = requester_of(job)
    if guild_id is None:
        return False
    args = [job.id, str(guild_id), str(user_id or 0), repr(time.time())]
    return bool(_run(conn, fair_lua.PARK, queue.name, args))


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


def head(conn: redis.Redis, queue_name: str, n: int) -> list[str]:
    """The next `n` jobs in the order workers will take them (a replay of n pops: O(n^2) entries at worst)."""
    if n <= 0:
        return []
    return [_text(i) for i in _run(conn, fair_read.HEAD, queue_name, [n])]


def count(conn: redis.Redis, queue_name: str = keys.IMAGE_QUEUE) -> int:
    """Jobs waiting in the queue: ready, parked (paused servers) and on RQ's own list."""
    with conn.pipeline(transaction=False) as pipe:
        pipe.get(prefix(queue_name) + "total")
        pipe.llen(front_key(queue_name))
        total, front = pipe.execute()
    return int(total or 0) + int(front)


def order(conn: redis.Redis, queue_name: str = keys.IMAGE_QUEUE) -> list[str]:
    """Every ready job in the order workers will take them (paused servers' are not in it). For tests and
    diagnostics: it replays the whole queue."""
    return head(conn, queue_name, count(conn, queue_name))


def places(conn: redis.Redis, queue_name: str, job_ids: list[str]) -> dict[str, int | None]:
    """0-based place of each waiting job; -1 for a paused server's; None when not waiting.

    The first `EXACT_PLACES` places are exact (a replay of that many pops). Further back the place is an estimate
    in O(log n): exact order would mean replaying every pop before the job, since a server's and a member's later
    jobs interleave with everyone else's. The estimate counts, for the member's job k turns into its member's
    queue, the jobs that each other member of its server has at lower tags (min(jobs, tag gap)), then the same
    for the other servers at the server's resulting turn; the 64 lowest-tagged competitors at each level are
    summed exactly and the rest extrapolated. It ignores ties, and so is off by at most one per competing member
    and server among those summed exactly.
    """
    if not job_ids:
        return {}
    found = _run(conn, fair_read.PLACES, queue_name, [EXACT_PLACES, *job_ids])
    return {job_id: (None if int(p) == -2 else int(p)) for job_id, p in zip(job_ids, found, strict=True)}


def position(conn: redis.Redis, queue_name: str, job_id: str) -> int | None:
    """0-based place of a waiting job (see `places`), or None when it is not waiting or its server is paused."""
    place = places(conn, queue_name, [job_id]).get(job_id)
    return place if place is not None and place >= 0 else None


def load_job(conn: redis.Redis, job_id: str) -> Job | None:
    try:
        return Job.fetch(job_id, connection=conn, serializer=JSONSerializer)
    except Exception:  # NoSuchJobError, or a hash RQ cannot read: either way, not a job we can act on
        return None


def upgrade(conn: redis.Redis) -> int:
    """Bring over what the list-rewriting scheduler left (run by workers at start-up; a no-op afterwards): its
    waiting jobs are on RQ's own list, which every pop reads first, but a paused server's were parked in its `meta`
    hash only. Those go into the fair structure; the old keys go. Returns how many jobs came over."""
    moved = 0
    for name in queue_names(conn):
        old = [keys.fair(name, n) for n in ("meta", "served", "vt", "seq")]
        for job_id, raw in conn.hgetall(old[0]).items():
            try:
                m = json.loads(raw)
                if m.get("p") == 1:
                    place(conn, name, _text(job_id), int(m["g"]), int(m["u"]))
                    moved += 1
            except (ValueError, KeyError, TypeError):
                continue
        conn.delete(*old)
    return moved


def clear(conn: redis.Redis, queue_name: str = keys.IMAGE_QUEUE) -> None:
    """Forget every waiting job of the queue and its tags (benchmarks and tests; the jobs' records stay)."""
    for key in conn.scan_iter(match=prefix(queue_name) + "*", count=1000):
        conn.delete(key)
    conn.delete(front_key(queue_name))
