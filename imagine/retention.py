"""A server's data ends when the bot leaves it: after a grace period, so a rejoin (a kick by mistake, a re-invite)
keeps its settings, limits and moderation rules.

`left` notes when the bot left (`imagine:guilds:left`, server -> time); `rejoined` takes the note back. `purge_due`,
run by the bot every few minutes, forgets every server left longer than the grace ago: its waiting jobs are
cancelled (their requesters are told, as for `/mod clear`), and every key of its own goes: `imagine:guild:<id>:*`,
`imagine:member:<id>:*` and its part of the fair queue. Job records and results keep their own TTLs.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis

from imagine import fair, keys, waiting

log = logging.getLogger(__name__)

#: What the requester of a job cancelled this way reads.
LEFT_REASON = "the bot has left this server, so this job was cancelled."


def left(conn: redis.Redis, guild_id: int, now: float | None = None) -> None:
    with conn.pipeline() as pipe:
        pipe.srem(keys.IN_GUILDS, str(int(guild_id)))
        pipe.zadd(keys.LEFT_GUILDS, {str(int(guild_id)): now if now is not None else time.time()})
        pipe.execute()


def rejoined(conn: redis.Redis, guild_id: int) -> bool:
    """Note the server as one the bot is in; True when it was waiting for its purge (its data is kept)."""
    with conn.pipeline() as pipe:
        pipe.sadd(keys.IN_GUILDS, str(int(guild_id)))
        pipe.zrem(keys.LEFT_GUILDS, str(int(guild_id)))
        return bool(pipe.execute()[1])


def reconcile(conn: redis.Redis, present: set[int], now: float | None = None) -> list[int]:
    """Note as left every server the bot was in and is not now (it was removed while offline); their ids."""
    raw: Any = conn.smembers(keys.IN_GUILDS)
    gone = sorted(int(g) for g in raw if int(g) not in present)
    for guild_id in gone:
        left(conn, guild_id, now)
    return gone


def purge_due(conn: redis.Redis, grace_s: float, now: float | None = None) -> list[int]:
    """Forget every server left more than `grace_s` ago; the ids forgotten."""
    cutoff = (now if now is not None else time.time()) - grace_s
    raw: Any = conn.zrangebyscore(keys.LEFT_GUILDS, "-inf", cutoff)
    due = [int(g) for g in raw]
    for guild_id in due:
        purge(conn, guild_id)
        conn.zrem(keys.LEFT_GUILDS, str(guild_id))
        log.info("forgot server %s (left more than %.0f s ago)", guild_id, grace_s)
    return due


def purge(conn: redis.Redis, guild_id: int) -> None:
    """Cancel the server's waiting jobs and delete every key it owns (one SCAN per family)."""
    gid = int(guild_id)
    waiting.clear(conn, gid, reason=LEFT_REASON)
    for name in fair.queue_names(conn):
        pre = fair.prefix(name)
        for key in conn.scan_iter(match=f"{pre}jobs:{gid}:*", count=1000):  # jobs no active set named
            for job_id in conn.zrange(key, 0, -1):
                fair.take_out(conn, name, job_id.decode() if isinstance(job_id, bytes) else str(job_id))
        with conn.pipeline() as pipe:
            pipe.zrem(pre + "sidle", str(gid))
            pipe.hdel(pre + "waiting", str(gid))
            pipe.delete(f"{pre}g:{gid}", f"{pre}members:{gid}", f"{pre}midle:{gid}")
            pipe.execute()
    conn.srem(keys.PAUSED, str(gid))
    for pattern in (keys.guild(gid, "*"), f"{keys.PREFIX}member:{gid}:*"):
        batch = list(conn.scan_iter(match=pattern, count=1000))
        for start in range(0, len(batch), 500):
            conn.delete(*batch[start : start + 500])
