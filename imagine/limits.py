"""Each server's limits: defaults from settings, overrides set by its moderators, kept in Redis (JSON values).

One place names every limit, how it is read from what a moderator types, and what it means, so `/mod limits`
can show and set them all and `imagine.admission` enforces the same values. Every number has a ceiling, the owner's
setting of the same name (`Limit.cap`), which is also the default: a server's moderators may only tighten it. A
value above the ceiling is refused when typed, and one stored before the owner lowered the ceiling reads as the
ceiling. (The worker checks steps, pixels, count and frames again anyway.)
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import redis
from pydantic import BaseModel, ConfigDict

from imagine import keys
from imagine.contract import MODEL_NAME
from imagine.settings import Settings

log = logging.getLogger(__name__)


class GuildLimits(BaseModel):
    """What one server allows. `models` empty: every model the workers offer."""

    model_config = ConfigDict(frozen=True)

    member_active: int
    member_hourly: int
    queue_depth: int
    max_steps: int
    max_pixels: int
    max_count: int
    max_frames: int
    models: tuple[str, ...] = ()
    paused_accepts: bool = True


@dataclass(frozen=True)
class Limit:
    name: str
    description: str
    kind: type  # int, bool or tuple (a list of model names)
    #: The global setting that caps it (a server may only tighten it), if any.
    cap: str | None = None


LIMITS: dict[str, Limit] = {
    limit.name: limit
    for limit in (
        Limit("member_active", "jobs one member may have queued or running at once", int, cap="member_max_active"),
        Limit("member_hourly", "jobs one member may ask for per hour", int, cap="member_max_per_hour"),
        Limit("queue_depth", "jobs the whole server may have queued or running at once", int, cap="guild_max_queue"),
        Limit("max_steps", "most denoising steps per job", int, cap="max_steps"),
        Limit("max_pixels", "most pixels per image (width x height)", int, cap="max_pixels"),
        Limit("max_count", "most images per job", int, cap="max_count"),
        Limit("max_frames", "most frames per clip", int, cap="max_frames"),
        Limit("models", "models members may use (`all`, or names separated by commas)", tuple),
        Limit("paused_accepts", "while paused, new jobs are taken and wait (yes) or refused (no)", bool),
    )
}


class LimitError(ValueError):
    """A value a moderator typed that a limit cannot take; the message says why."""


def defaults(settings: Settings) -> GuildLimits:
    return GuildLimits(
        member_active=settings.member_max_active,
        member_hourly=settings.member_max_per_hour,
        queue_depth=settings.guild_max_queue,
        max_steps=settings.max_steps,
        max_pixels=settings.max_pixels,
        max_count=settings.max_count,
        max_frames=settings.max_frames,
        paused_accepts=settings.paused_accepts,
    )


def load(conn: redis.Redis, guild_id: int, settings: Settings) -> GuildLimits:
    """The server's limits: its overrides on top of the defaults (a malformed override is ignored and logged)."""
    return merge(conn.hgetall(keys.guild(guild_id, "limits")), settings)


def merge(raw: dict[Any, Any], settings: Settings) -> GuildLimits:
    values = defaults(settings).model_dump()
    for key, value in raw.items():
        name = key.decode() if isinstance(key, bytes) else str(key)
        if name not in LIMITS:
            continue
        try:
            values[name] = _check(LIMITS[name], json.loads(value), settings)
        except LimitError as exc:  # above the owner's ceiling (lowered since it was set), or malformed
            log.warning("ignoring the limit %s=%r: %s", name, value, exc)
        except (ValueError, TypeError) as exc:
            log.warning("ignoring the malformed limit %s=%r: %s", name, value, exc)
    return GuildLimits(**values)


def overridden(conn: redis.Redis, guild_id: int) -> set[str]:
    """Names of the limits this server has set (the others are the defaults)."""
    return {k.decode() if isinstance(k, bytes) else str(k) for k in conn.hkeys(keys.guild(guild_id, "limits"))}


def parse(name: str, text: str, settings: Settings) -> Any:
    """The value of limit `name` from what a moderator typed, or `LimitError` saying what it takes."""
    limit = LIMITS.get(name)
    if limit is None:
        raise LimitError(f"there is no limit called `{name[:40]}`; one of {', '.join(LIMITS)}.")
    text = text.strip()
    value: Any
    if limit.kind is int:
        try:
            value = int(text.replace("_", "").replace(",", ""))
        except ValueError:
            raise LimitError(f"{name} takes a whole number.") from None
    elif limit.kind is bool:
        lowered = text.lower()
        if lowered in ("yes", "true", "on", "1", "accept"):
            value = True
        elif lowered in ("no", "false", "off", "0", "refuse"):
            value = False
        else:
            raise LimitError(f"{name} takes yes or no.")
    else:
        value = (
            () if text.lower() in ("all", "*", "") else tuple(p.strip().lower() for p in text.split(",") if p.strip())
        )
    return _check(limit, value, settings)


def _check(limit: Limit, value: Any, settings: Settings) -> Any:
    if limit.kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise LimitError(f"{limit.name} takes a whole number.")
        if value < 1:
            raise LimitError(f"{limit.name} must be at least 1.")
        if limit.cap is not None and value > (cap := getattr(settings, limit.cap)):
            raise LimitError(
                f"{limit.name} can be at most {cap:,}: the bot's owner allows no more (`IMAGINE_{limit.cap.upper()}`)."
            )
        return value
    if limit.kind is bool:
        if not isinstance(value, bool):
            raise LimitError(f"{limit.name} takes yes or no.")
        return value
    names = tuple(value)
    bad = [n for n in names if not isinstance(n, str) or not MODEL_NAME.match(n)]
    if bad:
        raise LimitError(f"`{str(bad[0])[:40]}` is not a model name.")
    return tuple(dict.fromkeys(names))


def store(conn: redis.Redis, guild_id: int, name: str, value: Any) -> None:
    value = list(value) if isinstance(value, tuple) else value
    conn.hset(keys.guild(guild_id, "limits"), name, json.dumps(value))


def reset(conn: redis.Redis, guild_id: int, name: str | None = None) -> None:
    """Back to the default: one limit, or all of them."""
    if name is None:
        conn.delete(keys.guild(guild_id, "limits"))
    else:
        conn.hdel(keys.guild(guild_id, "limits"), name)


def shown(name: str, value: Any) -> str:
    """A limit's value as a moderator reads it."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple):
        return ", ".join(value) if value else "all"
    return f"{value:,}" if isinstance(value, int) else str(value)
