"""imagine.moderation's banned words against a real Redis: what `ban` refuses (each refusal names its limit) and
that nothing refused is stored."""

from __future__ import annotations

import pytest
import redis

from imagine import keys, moderation

GUILD = 4242


def test_ban_refuses_past_each_limit_and_stores_nothing(conn: redis.Redis) -> None:
    with pytest.raises(moderation.RuleError, match=f"at most {moderation.MAX_WILDCARDS} `\\*`"):
        moderation.ban(conn, GUILD, "a*a*a*a*a*a*z")
    assert moderation.banned(conn, GUILD) == []
    assert moderation.ban(conn, GUILD, "G\u00d3RE") == ("g\u00f3re", True)  # shown as typed, matched folded
    assert moderation.ban(conn, GUILD, "g\u00f3re") == ("g\u00f3re", False)
    assert moderation.matches("g0re", moderation.banned(conn, GUILD))


def test_a_servers_patterns_are_capped_in_number_and_in_characters(conn: redis.Redis) -> None:
    length = moderation.MAX_PATTERN_CHARS
    full = moderation.MAX_BANNED_CHARS // length
    for n in range(full):
        moderation.ban(conn, GUILD, f"w{n:0{length - 1}d}")
    with pytest.raises(moderation.RuleError, match=f"{moderation.MAX_BANNED_CHARS:,} characters allowed"):
        moderation.ban(conn, GUILD, "one more")
    assert len(moderation.banned(conn, GUILD)) == full
    assert moderation.ban(conn, GUILD, "w" + "0" * (length - 1)) == ("w" + "0" * (length - 1), False)  # known: fine

    other = GUILD + 1
    conn.sadd(keys.guild(other, "banned"), *(f"w{n}" for n in range(moderation.MAX_PATTERNS)))
    with pytest.raises(moderation.RuleError, match=f"already has {moderation.MAX_PATTERNS} banned words"):
        moderation.ban(conn, other, "one more")
