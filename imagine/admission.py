"""May this job join the queue? Every server rule and limit, checked at enqueue; each refusal says which limit and
when to try again.

Two kinds of check. Rules about the request itself (blocked member, channel, banned words, models, NSFW, steps,
pixels, count, frames) are read and checked here. Limits that count jobs (per member at once and per hour, per
server at once) and the pause are checked in the same Lua script that puts the job in its fair place
(`imagine.fair.submit`), so two requests at the edge can never both slip under a limit.

Jobs without a server (the CLI's) skip the server's rules but still take their fair turn.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import redis
from rq.job import Job
from rq.queue import Queue

from imagine import fair, keys, limits, moderation
from imagine.contract import JobSpec, ModelInfo
from imagine.limits import GuildLimits
from imagine.settings import Settings

log = logging.getLogger(__name__)


class Refused(Exception):
    """A job this server's rules or limits turn down. `limit` names which; `retry_after` (seconds) says when the
    member may try again, when that is known. The message is polite and fit to show as it is."""

    def __init__(self, limit: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.limit = limit
        self.message = message
        self.retry_after = retry_after


def in_time(seconds: float) -> str:
    """`in 40 s`, `in 12 min`, `in 2 h`: when to try again, rounded up."""
    seconds = max(1.0, seconds)
    if seconds < 90:
        return f"in {math.ceil(seconds)} s"
    if seconds < 90 * 60:
        return f"in {math.ceil(seconds / 60)} min"
    return f"in {math.ceil(seconds / 3600)} h"


@dataclass(frozen=True)
class Rules:
    """A server's rules as one request needs them (one round trip to Redis)."""

    limits: GuildLimits
    blocked: bool
    banned: tuple[str, ...]
    channels: frozenset[int]
    nsfw: frozenset[str]
    models: dict[str, ModelInfo]


def read_rules(conn: redis.Redis, guild_id: int, user_id: int, settings: Settings) -> Rules:
    with conn.pipeline(transaction=False) as pipe:
        pipe.hgetall(keys.guild(guild_id, "limits"))
        pipe.sismember(keys.guild(guild_id, "blocked"), str(user_id))
        pipe.smembers(keys.guild(guild_id, "banned"))
        pipe.smembers(keys.guild(guild_id, "channels"))
        pipe.smembers(keys.guild(guild_id, "nsfw"))
        pipe.hvals(keys.MODELS)
        raw_limits, is_blocked, banned, channels, nsfw, models = pipe.execute()
    infos: dict[str, ModelInfo] = {}
    for raw in models:
        try:
            info = ModelInfo.model_validate_json(raw)
        except ValueError:
            continue
        infos[info.name] = info
    return Rules(
        limits=limits.merge(raw_limits, settings),
        blocked=bool(is_blocked),
        banned=tuple(sorted(_text(b) for b in banned)),
        channels=frozenset(int(_text(c)) for c in channels),
        nsfw=frozenset(_text(n) for n in nsfw),
        models=infos,
    )


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def check(spec: JobSpec, rules: Rules) -> None:
    """Raise `Refused` when the request breaks one of the server's rules (not the counting limits)."""
    r = spec.requester
    assert r is not None
    lim = rules.limits
    if rules.blocked:
        raise Refused("blocked", "you cannot ask for images on this server; a moderator can tell you why.")
    if rules.channels and r.channel_id not in rules.channels:
        where = ", ".join(f"<#{c}>" for c in sorted(rules.channels))
        raise Refused("channels", f"I make images only in {where} on this server; please ask there.")
    if rules.banned and moderation.matches(spec.prompt, rules.banned):
        # Never echo it: the member knows what they wrote, and the channel need not read it again.
        raise Refused("banned", "your prompt uses a word or phrase this server does not allow; please rephrase it.")
    info = rules.models.get(spec.model) if spec.model else next((m for m in rules.models.values() if m.default), None)
    model = spec.model or (info.name if info else None)
    if model is not None:
        if lim.models and model not in lim.models:
            raise Refused(
                "models", f"the model `{model}` is not available on this server; choose one of {', '.join(lim.models)}."
            )
        if (model in rules.nsfw or (info is not None and info.age_restricted_only)) and not r.age_restricted:
            raise Refused("nsfw", f"the model `{model}` can be used only in age-restricted channels here.")
    defaults = info.defaults if info is not None else None
    steps = spec.steps if spec.steps is not None else (defaults.steps if defaults else None)
    if steps is not None and steps > lim.max_steps:
        raise Refused("max_steps", f"this server allows at most {lim.max_steps} steps; ask for fewer.")
    if spec.count > lim.max_count:
        raise Refused("max_count", f"this server allows at most {lim.max_count} images per request; ask for fewer.")
    width = spec.width if spec.width is not None else (defaults.width if defaults else None)
    height = spec.height if spec.height is not None else (defaults.height if defaults else None)
    if width is not None and height is not None and width * height > lim.max_pixels:
        raise Refused(
            "max_pixels",
            f"this server allows images of at most {lim.max_pixels:,} pixels ({width}x{height} is "
            f"{width * height:,}); ask for a smaller size.",
        )
    frames = spec.frames if spec.frames is not None else (defaults.frames if defaults and spec.kind == "clip" else None)
    if frames is not None and frames > lim.max_frames:
        raise Refused("max_frames", f"this server allows clips of at most {lim.max_frames} frames; ask for fewer.")


COUNTED = {
    "paused": "the moderators have paused the queue here; please try again later.",
    "member_active": "you already have {n} jobs queued or running here, the most this server allows; "
    "try again when one of them finishes (see /queue).",
    "member_hourly": "you have asked for {n} jobs in the last hour, the most this server allows; try again {when}.",
    "queue_depth": "this server's queue is full ({n} jobs); please try again in a few minutes.",
    "global_queue": "the bot is very busy: {n} jobs are waiting across all its servers, the most it takes; "
    "please try again in a few minutes.",
}


def admit(conn: redis.Redis, queue: Queue, job: Job, spec: JobSpec, settings: Settings) -> fair.Admission:
    """Check `spec` against its server's rules and limits and put `job` in its fair place; raise `Refused`."""
    r = spec.requester
    cap = settings.max_waiting
    if r is None or r.guild_id is None:
        admission = fair.submit(conn, queue, job, guild_id=0, user_id=0, limits=None, global_cap=cap)
        lim = limits.defaults(settings)
    else:
        user_id = r.user_id or 0
        rules = read_rules(conn, r.guild_id, user_id, settings)
        check(spec, rules)
        lim = rules.limits
        admission = fair.submit(conn, queue, job, guild_id=r.guild_id, user_id=user_id, limits=lim, global_cap=cap)
    if admission.refused:
        raise counted_refusal(admission, lim, cap)
    return admission


def probe(conn: redis.Redis, queue_name: str, guild_id: int, user_id: int, rules: Rules, settings: Settings) -> None:
    """Raise `Refused` when the counting limits would turn one more job of this member down now (a look ahead:
    `admit` decides; see `imagine.fair.probe`)."""
    cap = settings.max_waiting
    admission = fair.probe(conn, queue_name, guild_id=guild_id, user_id=user_id, limits=rules.limits, global_cap=cap)
    if admission.refused:
        raise counted_refusal(admission, rules.limits, cap)


def counted_refusal(admission: fair.Admission, lim: GuildLimits, cap: int) -> Refused:
    """The member's line for a counting limit's refusal, naming the limit."""
    n = {
        "member_active": lim.member_active,
        "member_hourly": lim.member_hourly,
        "queue_depth": lim.queue_depth,
        "global_queue": f"{cap:,}",
    }
    text = COUNTED[admission.refused].format(n=n.get(admission.refused, ""), when=in_time(admission.retry_after))
    text += f" (limit: `{admission.refused}`)"
    return Refused(admission.refused, text, admission.retry_after or None)
