"""Posting a job's outcome exactly once, and keeping what Discord would not take until it does.

`send_once` is the one way a result or a failure notice reaches Discord: it takes the job's delivery lease
(`worker.idempotency`), posts, and marks the job delivered. When Discord still refuses after the REST client's own
retries (429s, 5xx, timeouts), the message is not dropped: it goes to the outbox (`imagine:outbox`, a sorted set by
when to try next, with the message itself kept for `keys.OUTBOX_TTL`), and every worker's maintenance pass
(`worker.reaper`) tries due messages again, backing off from the maintenance interval up to half an hour.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import redis

from imagine import keys, tokens, ui
from imagine.contract import JobSpec
from worker import idempotency
from worker.discord_rest import DiscordError, DiscordREST, File
from worker.targets import Target

log = logging.getLogger(__name__)

#: The longest wait between two tries of one kept message.
MAX_WAIT_S = 30 * 60
#: Messages tried per pass (the rest wait for the next pass).
PER_PASS = 20

Outcome = Literal["posted", "already", "kept"]


@dataclass
class Parcel:
    """One message about one job: its result (file and buttons) or why it failed."""

    job_id: str
    kind: Literal["result", "failure"]
    #: The queue payload: where to post (never the interaction token: `imagine.tokens` keeps that).
    spec: dict[str, Any]
    payload: dict[str, Any]
    #: The content of a channel reply, used once the interaction token is gone (the member is mentioned before it).
    late: str
    #: What the old status message says once the outcome went to a channel reply.
    tidy: str
    files: list[File] = field(default_factory=list)
    count: int = 0
    attempts: int = 0

    def dumps(self) -> str:
        data = {k: v for k, v in vars(self).items() if k != "files"}
        data["files"] = [[name, base64.b64encode(blob).decode("ascii")] for name, blob in self.files]
        return json.dumps(data)

    @classmethod
    def loads(cls, raw: str | bytes) -> Parcel:
        data = json.loads(raw)
        data["files"] = [(name, base64.b64decode(blob)) for name, blob in data.get("files", [])]
        return cls(**data)


def failure_parcel(job_id: str, spec_payload: dict[str, Any], error: str) -> Parcel:
    """A failure notice: it replaces the status message (no image, no buttons)."""
    spec = JobSpec.model_validate(spec_payload)
    text = ui.failed_text(spec, error)
    return Parcel(
        job_id=job_id,
        kind="failure",
        spec=spec.public(),
        payload={"content": text, "allowed_mentions": ui.NO_MENTIONS, "attachments": [], "components": []},
        late=text,
        tidy="❌ this request failed — the reason is in the reply below.",
    )


def send_once(ctx: Any, rest: DiscordREST, parcel: Parcel, *, lease_s: float | None = None) -> Outcome:
    """Post `parcel` unless the job's outcome is already on Discord (or being posted); keep it when Discord refuses."""
    conn: redis.Redis = ctx.conn
    lease_s = lease_s or float(ctx.settings.heartbeat_ttl)
    holder = idempotency.new_holder(ctx.name)
    claim = idempotency.claim(conn, parcel.job_id, holder, lease_s)
    if claim.verdict == "posted":
        log.info("job %s was already delivered; not posting again", parcel.job_id)
        forget(conn, parcel.job_id)
        return "already"
    if claim.verdict == "busy":
        # Someone else is posting it now. Keep a copy for when their lease ends: if they die, it is posted then.
        log.info("job %s is being posted by another worker; keeping a copy in case it dies", parcel.job_id)
        keep(conn, parcel, due=time.time() + claim.wait_ms / 1000 + 1, count_attempt=False)
        return "kept"
    # The parcel keeps no token: the job's own key has it while it lives (`imagine.tokens`), else the bot token.
    target = Target.of(JobSpec.model_validate(parcel.spec).without_secrets(), tokens.fetch(conn, parcel.job_id))
    with idempotency.Lease(conn, parcel.job_id, holder, lease_s):
        if claim.verdict == "taken-over" and _already_on_discord(rest, target, parcel):
            log.info("job %s: a poster that died had posted it already", parcel.job_id)
            idempotency.mark_posted(conn, parcel.job_id, holder, target.message_id, taken_over=True)
            forget(conn, parcel.job_id)
            return "already"
        try:
            message = target.post_result(
                rest, parcel.payload, list(parcel.files), parcel.late, tidy=parcel.tidy, nonce=parcel.job_id[:25]
            )
        except DiscordError as exc:
            log.warning("job %s: Discord refused its %s (%s); keeping it to try again", parcel.job_id, parcel.kind, exc)
            idempotency.release(conn, parcel.job_id, holder)
            keep(conn, parcel, interval=float(ctx.settings.maintenance_interval))
            return "kept"
    message_id = _record(ctx, parcel, target, message)
    idempotency.mark_posted(conn, parcel.job_id, holder, message_id, taken_over=claim.verdict == "taken-over")
    forget(conn, parcel.job_id)
    tokens.forget(conn, parcel.job_id)  # the outcome is on Discord: nothing more to say with it
    log.info("job %s: %s posted (%s)", parcel.job_id, parcel.kind, target.delivered_via)
    return "posted"


def _already_on_discord(rest: DiscordREST, target: Target, parcel: Parcel) -> bool:
    """After a poster died mid-post: does the status message already show this outcome? (Unknown: no.)"""
    if not (target.channel_id and target.message_id):
        return False
    try:
        message = rest.get_message(target.channel_id, target.message_id)
    except DiscordError as exc:
        log.info("job %s: could not read its status message back (%s)", parcel.job_id, exc)
        return False
    if parcel.kind == "result":
        wanted = ui.custom_id(ui.REROLL, parcel.job_id)
        return wanted in json.dumps(message.get("components") or [])
    return message.get("content") == parcel.payload.get("content")


def _record(ctx: Any, parcel: Parcel, target: Target, message: Any) -> int | None:
    """Where the outcome went, for later buttons and reactions (the job record and the message's job link)."""
    message_id = int(message["id"]) if isinstance(message, dict) and "id" in message else target.message_id
    channel_id = (
        int(message["channel_id"]) if isinstance(message, dict) and "channel_id" in message else target.channel_id
    )
    if parcel.kind != "result":
        return message_id
    mapping: dict[Any, Any] = {"delivery": target.delivered_via, "count": str(parcel.count)}
    if message_id:
        mapping["message_id"] = str(message_id)
    if channel_id:
        mapping["channel_id"] = str(channel_id)
    ttl = ctx.settings.record_ttl
    with ctx.conn.pipeline() as pipe:
        pipe.hset(keys.job(parcel.job_id), mapping=mapping)
        if message_id:
            pipe.set(keys.message(message_id), parcel.job_id, ex=ttl)
        pipe.execute()
    return message_id


# -- the outbox ----------------------------------------------------------------------------------------------


def keep(
    conn: redis.Redis,
    parcel: Parcel,
    *,
    due: float | None = None,
    interval: float = 15.0,
    count_attempt: bool = True,
) -> None:
    """Keep `parcel` for a later try: at `due`, else after a backoff from `interval` that doubles per attempt."""
    if count_attempt:
        parcel.attempts += 1
    if due is None:
        wait = min(MAX_WAIT_S, interval * 2 ** max(0, parcel.attempts - 1))
        due = time.time() + wait * random.uniform(0.8, 1.2)
    key = keys.outbox(parcel.job_id)
    ttl = conn.ttl(key)
    with conn.pipeline() as pipe:
        # The TTL counts from the first time it was kept: a message is not retried for ever.
        pipe.set(key, parcel.dumps(), ex=ttl if isinstance(ttl, int) and ttl > 0 else keys.OUTBOX_TTL)
        pipe.zadd(keys.OUTBOX, {parcel.job_id: due})
        pipe.execute()


def forget(conn: redis.Redis, job_id: str) -> None:
    with conn.pipeline() as pipe:
        pipe.zrem(keys.OUTBOX, job_id)
        pipe.delete(keys.outbox(job_id))
        pipe.execute()


def pending(conn: redis.Redis) -> list[str]:
    """Job ids waiting in the outbox, soonest first."""
    return [j.decode() if isinstance(j, bytes) else str(j) for j in conn.zrange(keys.OUTBOX, 0, -1)]


def retry_due(ctx: Any, rest: DiscordREST, *, now: float | None = None) -> dict[str, int]:
    """One pass: try every kept message that is due. Returns how many were posted, kept again, or given up."""
    conn: redis.Redis = ctx.conn
    now = time.time() if now is None else now
    counts = {"posted": 0, "already": 0, "kept": 0, "expired": 0}
    for raw_id in conn.zrangebyscore(keys.OUTBOX, "-inf", now, start=0, num=PER_PASS):
        job_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
        # Push it back first, so a pass that dies here leaves it for a later one rather than losing it.
        conn.zadd(keys.OUTBOX, {job_id: now + max(60.0, 4 * float(ctx.settings.heartbeat_ttl))})
        raw = conn.get(keys.outbox(job_id))
        if raw is None:
            log.error("job %s: its message could not be posted for %d s; giving up", job_id, keys.OUTBOX_TTL)
            conn.zrem(keys.OUTBOX, job_id)
            counts["expired"] += 1
            continue
        try:
            parcel = Parcel.loads(raw)
        except (ValueError, TypeError, KeyError):
            log.exception("job %s: a malformed message in the outbox; dropping it", job_id)
            forget(conn, job_id)
            continue
        counts[send_once(ctx, rest, parcel)] += 1
    return counts
