"""A server's rules as its moderators set them: blocked members, banned words, answering channels, NSFW-capable
models, the moderator role; and the log of every moderator action. Kept in Redis under `imagine:guild:<id>:...`.

Banned words are matched on whole words by `imagine.blocklist`, after folding case, accents, invisible and
look-alike characters (`ＢＡＤ`, `b\u200bad`, `bаd` with a Cyrillic a, `b4d`, `b.a.d` are all `bad`). A pattern is a
word or a phrase; `*` stands for any letters within a word (`gor*` catches gore and gory), and the words of a
phrase match across any spaces or punctuation (`bad word` catches bad-word). Moderators cannot enter regular
expressions, and the matcher cannot backtrack: a check costs time linear in the prompt, whatever is stored.
"""

from __future__ import annotations

import json
import logging
import time
import unicodedata
from dataclasses import dataclass
from typing import Any

import redis

from imagine import blocklist, keys

log = logging.getLogger(__name__)

MAX_PATTERNS = 500
MAX_PATTERN_CHARS = 100
MAX_WILDCARDS = blocklist.MAX_WILDCARDS  # `*` per pattern (`imagine.blocklist`)
# All of a server's patterns together: a check costs about 1 us per character of them per 1,000 of the prompt.
MAX_BANNED_CHARS = 10_000


class RuleError(ValueError):
    """Something a moderator typed that cannot become a rule; the message says why."""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# --- blocked members ------------------------------------------------------------------------------------------


def block(conn: redis.Redis, guild_id: int, user_id: int) -> bool:
    """Block a member from asking for images here; False when already blocked."""
    return bool(conn.sadd(keys.guild(guild_id, "blocked"), str(int(user_id))))


def unblock(conn: redis.Redis, guild_id: int, user_id: int) -> bool:
    return bool(conn.srem(keys.guild(guild_id, "blocked"), str(int(user_id))))


def blocked(conn: redis.Redis, guild_id: int) -> list[int]:
    return sorted(int(_text(v)) for v in conn.smembers(keys.guild(guild_id, "blocked")))


# --- banned words ---------------------------------------------------------------------------------------------


def normalise(text: str) -> str:
    """What banned words are matched against: NFKC, casefolded, without invisible (format) characters."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return "".join(c for c in text if unicodedata.category(c) != "Cf")


def clean_pattern(pattern: str) -> str:
    """A pattern as stored: normalised, single spaces; `RuleError` (naming the limit) when it cannot be stored."""
    cleaned = " ".join(normalise(pattern).split())
    if len(cleaned) > MAX_PATTERN_CHARS:
        raise RuleError(f"a banned word or phrase can be at most {MAX_PATTERN_CHARS} characters.")
    try:
        blocklist.check_pattern(cleaned)
    except blocklist.PatternError as exc:
        raise RuleError(str(exc)) from None
    return cleaned


def matches(text: str, patterns: tuple[str, ...] | list[str] | set[str]) -> bool:
    """Whether `text` contains any of the (stored, cleaned) patterns as whole words (`imagine.blocklist`)."""
    return blocklist.matches(text, patterns)


def ban(conn: redis.Redis, guild_id: int, pattern: str) -> tuple[str, bool]:
    """Add a banned word or phrase; returns it as stored, and False when it was there already."""
    cleaned = clean_pattern(pattern)
    key = keys.guild(guild_id, "banned")
    stored = {_text(v) for v in conn.smembers(key)}
    if cleaned in stored:
        return cleaned, False
    if len(stored) >= MAX_PATTERNS:
        raise RuleError(f"this server already has {MAX_PATTERNS} banned words; remove some first.")
    used = sum(len(p) for p in stored)
    if used + len(cleaned) > MAX_BANNED_CHARS:
        raise RuleError(
            f"this server's banned words already use {used:,} of the {MAX_BANNED_CHARS:,} characters allowed "
            "in all; remove some first."
        )
    return cleaned, bool(conn.sadd(key, cleaned))


def unban(conn: redis.Redis, guild_id: int, pattern: str) -> tuple[str, bool]:
    cleaned = " ".join(normalise(pattern).split())
    return cleaned, bool(conn.srem(keys.guild(guild_id, "banned"), cleaned))


def banned(conn: redis.Redis, guild_id: int) -> list[str]:
    return sorted(_text(v) for v in conn.smembers(keys.guild(guild_id, "banned")))


# --- channels, NSFW models, moderator role --------------------------------------------------------------------


def allow_channel(conn: redis.Redis, guild_id: int, channel_id: int) -> bool:
    """Answer in this channel; once any channel is chosen, only in the chosen ones."""
    return bool(conn.sadd(keys.guild(guild_id, "channels"), str(int(channel_id))))


def disallow_channel(conn: redis.Redis, guild_id: int, channel_id: int) -> bool:
    return bool(conn.srem(keys.guild(guild_id, "channels"), str(int(channel_id))))


def channels(conn: redis.Redis, guild_id: int) -> list[int]:
    """The channels the bot answers in; empty: every channel it can see."""
    return sorted(int(_text(v)) for v in conn.smembers(keys.guild(guild_id, "channels")))


def mark_nsfw(conn: redis.Redis, guild_id: int, model: str) -> bool:
    """Mark a model NSFW-capable: members may use it only in age-restricted channels."""
    return bool(conn.sadd(keys.guild(guild_id, "nsfw"), model))


def unmark_nsfw(conn: redis.Redis, guild_id: int, model: str) -> bool:
    return bool(conn.srem(keys.guild(guild_id, "nsfw"), model))


def nsfw_models(conn: redis.Redis, guild_id: int) -> list[str]:
    return sorted(_text(v) for v in conn.smembers(keys.guild(guild_id, "nsfw")))


def set_moderator_role(conn: redis.Redis, guild_id: int, role_id: int | None) -> None:
    if role_id is None:
        conn.delete(keys.guild(guild_id, "modrole"))
    else:
        conn.set(keys.guild(guild_id, "modrole"), str(int(role_id)))


def moderator_role(conn: redis.Redis, guild_id: int) -> int | None:
    value = conn.get(keys.guild(guild_id, "modrole"))
    return int(_text(value)) if value is not None else None


# --- the moderator action log ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    """One moderator action: who (user id), what (a verb and its object), when (epoch seconds)."""

    ts: float
    actor: int
    action: str
    detail: str = ""


def record(conn: redis.Redis, guild_id: int, actor: int, action: str, detail: str = "") -> Action:
    entry = Action(time.time(), int(actor), action, detail)
    key = keys.guild(guild_id, "modlog")
    with conn.pipeline() as pipe:
        pipe.lpush(key, json.dumps(entry.__dict__))
        pipe.ltrim(key, 0, keys.MODLOG_SIZE - 1)
        pipe.execute()
    log.info("moderator %s in server %s: %s %s", actor, guild_id, action, detail)
    return entry


def history(conn: redis.Redis, guild_id: int, count: int = 20) -> list[Action]:
    """The newest `count` actions, newest first."""
    found = []
    for raw in conn.lrange(keys.guild(guild_id, "modlog"), 0, max(0, count - 1)):
        try:
            found.append(Action(**json.loads(raw)))
        except (ValueError, TypeError):
            log.warning("skipping a malformed moderator log entry in server %s", guild_id)
    return found
