"""Interaction tokens: kept in their own key, for as long as they live, and nowhere else in Redis.

A token lets whoever holds it post as the bot in its channel for 15 minutes after the interaction. The worker
needs it (to edit the deferred "thinking…" message), so the bot keeps it under `imagine:token:<job>` with an
expiry at the token's own end, and the job itself (RQ's job data, kept 30 days after a failure), the job record,
results and outbox parcels never hold it. Past that, delivery uses the bot token (`worker.targets`).
"""

from __future__ import annotations

import time

import redis

from imagine import keys

#: Discord's interaction tokens live this long after the interaction.
LIFETIME_S = 15 * 60
DISCORD_EPOCH_MS = 1420070400000


def snowflake_time(snowflake: int) -> float:
    """Seconds since the epoch at which a Discord id was made."""
    return ((snowflake >> 22) + DISCORD_EPOCH_MS) / 1000


def seconds_left(interaction_id: int | None, now: float | None = None) -> int:
    """How long a token of `interaction_id` still lives, in whole seconds (the full lifetime when unknown)."""
    if interaction_id is None:
        return LIFETIME_S
    now = time.time() if now is None else now
    return int(LIFETIME_S - (now - snowflake_time(interaction_id)))


def keep(conn: redis.Redis, job_id: str, token: str, interaction_id: int | None) -> bool:
    """Keep `token` for `job_id` until it expires; False (nothing kept) when it has expired already."""
    ttl = seconds_left(interaction_id)
    if ttl <= 0:
        return False
    conn.set(keys.token(job_id), token, ex=ttl)
    return True


def fetch(conn: redis.Redis, job_id: str) -> str | None:
    """The job's interaction token while it lives, else None."""
    value = conn.get(keys.token(job_id))
    return value.decode() if isinstance(value, bytes) else value


def forget(conn: redis.Redis, job_id: str) -> None:
    """The job's outcome is on Discord: its token is needed no more."""
    conn.delete(keys.token(job_id))
