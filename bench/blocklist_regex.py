"""The banned-word matcher as it was before `imagine.blocklist`: one backtracking regex. Kept for the benchmark's
baseline only (bench/blocklist.py); `a*a*a*a*a*a*z` against 80 letters took 9.2 s with it.
"""

from __future__ import annotations

import functools
import re
import unicodedata


def normalise(text: str) -> str:
    """NFKC, casefolded, without invisible (format) characters."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return "".join(c for c in text if unicodedata.category(c) != "Cf")


def _regex(pattern: str) -> str:
    words = []
    for word in pattern.split(" "):
        words.append(r"[^\W_]*".join(re.escape(part) for part in word.split("*")))
    return r"(?<![^\W_])" + r"[\W_]+".join(words) + r"(?![^\W_])"


@functools.lru_cache(maxsize=256)
def _compiled(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    return re.compile("|".join(_regex(p) for p in patterns))


def matches(text: str, patterns: tuple[str, ...] | list[str] | set[str]) -> bool:
    """Whether `text` contains any of the (stored, cleaned) patterns as whole words."""
    regex = _compiled(tuple(sorted(patterns)))
    return regex is not None and regex.search(normalise(text)) is not None
