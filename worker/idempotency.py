"""Exactly-once posting of a job's outcome: a lease in Redis, taken atomically before posting, kept while posting.

A plain "set a key, then post" loses the result when the worker dies between the two (the key says delivered, and
nothing was posted). So the key (`imagine:delivered:<job>`, JSON) goes through two states:

- `posting`: held by one poster, with a lease (`until`, Redis server time) that the holder renews while it posts. A
  poster that dies stops renewing; the lease runs out within `lease_s` and the next poster takes it over.
- `posted`: the outcome is on Discord; nobody posts again (kept for `keys.DELIVERED_TTL`).

Taking over after a death may repeat a post that did reach Discord before the poster died. Every post is therefore
idempotent on Discord's side: the result edits the interaction's own message (editing twice leaves one message), and
a channel message carries a `nonce` with `enforce_nonce`, so Discord returns the first message instead of making a
second one. The lease only has to stop two live posters from racing, and a dead one from blocking the job forever.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

import redis

from imagine import keys

log = logging.getLogger(__name__)

Verdict = Literal["claimed", "taken-over", "busy", "posted"]

# KEYS[1] the job's key; ARGV: holder, lease ms, key TTL s. Server time, so posters on several machines agree.
_CLAIM = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local raw = redis.call('GET', KEYS[1])
local verdict = 'claimed'
local takeovers = 0
if raw then
  local ok, cur = pcall(cjson.decode, raw)
  if not ok or type(cur) ~= 'table' or cur.state ~= 'posting' then
    return {'posted', 0}
  end
  if cur.holder ~= ARGV[1] and tonumber(cur['until']) > now then
    return {'busy', tonumber(cur['until']) - now}
  end
  verdict = 'taken-over'
  takeovers = (tonumber(cur.takeovers) or 0) + 1
end
local value = {state = 'posting', holder = ARGV[1], ['until'] = now + tonumber(ARGV[2]), takeovers = takeovers}
redis.call('SET', KEYS[1], cjson.encode(value), 'EX', tonumber(ARGV[3]))
return {verdict, 0}
"""

# Renew the lease if we still hold it. ARGV: holder, lease ms.
_RENEW = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local ok, cur = pcall(cjson.decode, raw)
if not ok or type(cur) ~= 'table' or cur.state ~= 'posting' or cur.holder ~= ARGV[1] then return 0 end
local t = redis.call('TIME')
cur['until'] = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[2])
redis.call('SET', KEYS[1], cjson.encode(cur), 'KEEPTTL')
return 1
"""

# Give the lease back (the post failed; the outbox will try again). ARGV: holder.
_RELEASE = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local ok, cur = pcall(cjson.decode, raw)
if ok and type(cur) == 'table' and cur.state == 'posting' and cur.holder == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""


def new_holder(worker: str) -> str:
    """A holder name unique to one delivery attempt (a worker may retry its own job)."""
    return f"{worker}/{uuid.uuid4().hex[:8]}"


@dataclass
class Claim:
    verdict: Verdict
    #: For `busy`: milliseconds until the other poster's lease runs out.
    wait_ms: int = 0

    @property
    def ours(self) -> bool:
        return self.verdict in ("claimed", "taken-over")


def claim(conn: redis.Redis, job_id: str, holder: str, lease_s: float) -> Claim:
    """Take the right to post the job's outcome (see the module docstring for the verdicts)."""
    reply: Any = conn.eval(_CLAIM, 1, keys.delivered(job_id), holder, int(lease_s * 1000), keys.DELIVERED_TTL)
    verdict = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
    return Claim(verdict, int(reply[1]))  # type: ignore[arg-type]


def renew(conn: redis.Redis, job_id: str, holder: str, lease_s: float) -> bool:
    return bool(conn.eval(_RENEW, 1, keys.delivered(job_id), holder, int(lease_s * 1000)))


def release(conn: redis.Redis, job_id: str, holder: str) -> bool:
    return bool(conn.eval(_RELEASE, 1, keys.delivered(job_id), holder))


def mark_posted(
    conn: redis.Redis, job_id: str, holder: str, message_id: int | None, *, taken_over: bool = False
) -> None:
    """The outcome is on Discord: nobody posts it again (`taken_over`: after a poster died mid-post)."""
    value = {
        "state": "posted",
        "holder": holder,
        "message_id": str(message_id) if message_id else None,
        "taken_over": taken_over,
    }
    conn.set(keys.delivered(job_id), json.dumps(value), ex=keys.DELIVERED_TTL)


def state(conn: redis.Redis, job_id: str) -> dict[str, Any] | None:
    """The key's JSON, for tests and the chaos report."""
    raw = conn.get(keys.delivered(job_id))
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return {"state": "posted"}  # an older plain marker
    return value if isinstance(value, dict) else {"state": "posted"}


class Lease:
    """Keeps a claimed lease alive from a thread while the holder posts (renewed every third of the lease)."""

    def __init__(self, conn: redis.Redis, job_id: str, holder: str, lease_s: float) -> None:
        self.conn, self.job_id, self.holder, self.lease_s = conn, job_id, holder, lease_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{job_id}", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            try:
                if not renew(self.conn, self.job_id, self.holder, self.lease_s):
                    log.warning("job %s: lost the delivery lease", self.job_id)
                    return
            except redis.RedisError as exc:  # Redis away for a moment: the next renewal may get through
                log.warning("job %s: could not renew the delivery lease: %s", self.job_id, exc)

    def __enter__(self) -> Lease:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
