"""Banned words matched in time linear in the prompt, whatever the moderators store.

Both a pattern and a prompt are folded (`imagine.skeleton`: case, accents, invisible characters, confusables) and
cut into words. A pattern becomes a row of positions: a word boundary, then its letters (`*`: any letters within
the word), a boundary between its words, a boundary at its end. All of a server's patterns are run at once as one
bit-parallel automaton (Shift-And, one bit per position, a Python int as the bit vector): each character of the
prompt costs a few operations on that int, so a check costs O(prompt x positions / 30) and nothing backtracks.

What a prompt's character may stand for (evasions that are caught):
  - inside a word that has letters, a digit or symbol may stand for the letter it looks like (`g0re`, `@ss`,
    `a$$`); a number on its own stays a number (`455 hp` does not read `ass`);
  - single letters with up to three separators between them may be read as one word (`g.o.r.e`, `g o r e`);
  - three or more of one letter may stand for fewer (`goooore`); two stay two, or `good` would read `god`.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable

from imagine.skeleton import fold

MAX_WILDCARDS = 4
# Inside a word, what a digit or symbol may stand for besides itself (leetspeak).
LOOKALIKES: dict[str, str] = {
    "0": "o",
    "1": "il",
    "2": "z",
    "3": "e",
    "4": "a",
    "5": "s",
    "6": "gb",
    "7": "t",
    "8": "b",
    "9": "g",
    "@": "a",
    "$": "s",
    "€": "e",
    "!": "il",
    "|": "il",
}
_SYMBOLS = "".join(c for c in LOOKALIKES if not c.isalnum())
# In a pattern a symbol is a letter when it is part of a word: `@ss` is ass; `!` and `|` are punctuation there.
_PATTERN_SYMBOLS = {"@": "a", "$": "s", "€": "e"}
# Runs of characters that may belong to a word; a run without a letter or digit is a separator. One character
# class repeated: linear in the text, whatever it holds.
_PROMPT_RUN = re.compile(r"(?:[^\W_]|[" + re.escape(_SYMBOLS) + r"])+")
_PATTERN_RUN = re.compile(r"(?:[^\W_]|[*@$€])+")
JOIN_GAP = 3  # single letters with at most this many characters between them may be read as one word
REPEAT = 3  # a letter written this many times or more may stand for fewer

# A prompt symbol's kind: a letter as written, a digit or symbol that may also stand for letters, a separator.
LETTER, LOOKALIKE, SEPARATOR = 0, 1, 2
Symbol = tuple[str, int, bool]  # (character, kind, may be skipped)
# What a symbol does to the automaton's bits: the positions it can fill (from the one before), the positions it can
# stay in (`*`, separators), the patterns' starts it fills, the positions it can fill that precede a `*`, and
# whether it can end a pattern.
Step = tuple[int, int, int, int, bool]


class PatternError(ValueError):
    """A pattern that cannot be stored; the message names the rule it breaks."""


def pattern_words(pattern: str) -> list[str]:
    """A pattern's words as matched: folded, split at anything but letters, digits and `*` (runs of `*` as one)."""
    folded = fold(pattern)
    words = []
    for run in _PATTERN_RUN.findall(folded):
        word = re.sub(r"\*+", "*", "".join(_PATTERN_SYMBOLS.get(c, c) for c in run))
        words.append(word)
    return words


def check_pattern(pattern: str) -> list[str]:
    """The words of a pattern a moderator may store; `PatternError` when it has no letter or too many `*`."""
    words = pattern_words(pattern)
    if not any(c.isalnum() for word in words for c in word):
        raise PatternError("a banned word needs at least one letter or digit.")
    wildcards = sum(word.count("*") for word in words)
    if wildcards > MAX_WILDCARDS:
        raise PatternError(
            f"a banned word or phrase can have at most {MAX_WILDCARDS} `*` (this one has {wildcards}); "
            "more would match almost any prompt."
        )
    return words


def symbols(text: str) -> list[Symbol]:
    """A prompt as the automaton reads it: a separator, its words' characters with separators between, a separator."""
    folded = fold(text)
    runs = [m for m in _PROMPT_RUN.finditer(folded) if any(c.isalnum() for c in m.group())]
    out: list[Symbol] = [(" ", SEPARATOR, False)]
    group: list[str] = []  # consecutive single letters, read as one word too
    for i, match in enumerate(runs):
        word = match.group()
        group.append(word)
        following = runs[i + 1] if i + 1 < len(runs) else None
        joined = (
            following is not None
            and len(word) == 1
            and len(following.group()) == 1
            and following.start() - match.end() <= JOIN_GAP
        )
        if joined:
            continue
        _emit_group(group, out)
        group = []
        out.append((" ", SEPARATOR, False))
    return out


def _emit_group(group: list[str], out: list[Symbol]) -> None:
    """One word, or single letters read either as words or as one word (the separators between may be skipped)."""
    leet = any(not c.isdigit() for word in group for c in word)  # a number on its own stays a number
    for n, word in enumerate(group):
        if n:
            out.append((" ", SEPARATOR, True))
        for char, run in itertools.groupby(word):
            count = len(list(run))
            kind = LOOKALIKE if leet and char in LOOKALIKES else LETTER
            # Three or more of a letter may stand for one or more: `goooore` reads gore, goore ... goooore.
            for n_char in range(count):
                out.append((char, kind, count >= REPEAT and n_char > 0))


class Blocklist:
    """A server's patterns compiled into one automaton; `matches(prompt)` is linear in the prompt."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.start = self.final = self.stars = self.before_star = self.boundaries = 0
        self.letters: dict[str, int] = {}
        self.size = 0
        for pattern in patterns:
            words = pattern_words(pattern)  # stored ones are compiled as they are, even past today's limits
            if any(c.isalnum() for word in words for c in word):
                self._add(words)
        self._steps: dict[tuple[str, int], Step] = {}

    def _add(self, words: list[str]) -> None:
        positions = [" "]
        for word in words:
            positions.extend(word)
            positions.append(" ")
        base = self.size
        self.start |= 1 << base
        self.final |= 1 << (base + len(positions) - 1)
        for offset, char in enumerate(positions):
            bit = 1 << (base + offset)
            if char == " ":
                self.boundaries |= bit
            elif char == "*":
                self.stars |= bit
                self.before_star |= bit >> 1
            else:
                self.letters[char] = self.letters.get(char, 0) | bit
        self.size = base + len(positions)

    def _mask(self, char: str, kind: int) -> Step:
        """How one kind of prompt symbol moves the automaton (`Step`), computed once per blocklist."""
        key = (char, kind)
        found = self._steps.get(key)
        if found is not None:
            return found
        if kind == LETTER and char not in self.letters:
            key = ("", LETTER)  # a letter no pattern names: one shared step, so a prompt cannot grow the cache
            found = self._steps.get(key)
            if found is not None:
                return found
        if kind == SEPARATOR:
            fill, stay = self.boundaries, self.boundaries
        else:
            fill, stay = self.letters.get(char, 0) | self.stars, self.stars
            if kind == LOOKALIKE:
                for letter in LOOKALIKES[char]:
                    fill |= self.letters.get(letter, 0)
                if not char.isalnum():  # a symbol may also be punctuation: `kill!` is kill
                    fill |= self.boundaries
                    stay |= self.boundaries
        found = (fill, stay, self.start & fill, (fill | stay) & self.before_star, bool(fill & self.final))
        self._steps[key] = found  # at most: the patterns' letters, the look-alikes and the separator
        return found

    def matches(self, text: str) -> bool:
        """Whether any pattern matches whole words of `text`, under any reading of its look-alikes."""
        if not self.size:
            return False
        state, final, steps = 0, self.final, self._steps
        for char, kind, skippable in symbols(text):
            fill, stay, entry, before_star, can_end = steps.get((char, kind)) or self._mask(char, kind)
            after = ((state << 1) & fill) | entry
            if stay:
                after |= state & stay
            if before_star:
                after |= (after & before_star) << 1  # `*` may stand for no letters
            if skippable:
                after |= state
            if can_end and after & final:
                return True
            state = after
        return False


@functools.lru_cache(maxsize=256)
def compiled(patterns: frozenset[str]) -> Blocklist:
    """A server's blocklist, compiled once per set of patterns (the cache keeps the busiest servers')."""
    return Blocklist(sorted(patterns))


def matches(text: str, patterns: Iterable[str]) -> bool:
    """Whether `text` uses any of `patterns` (as stored by `imagine.moderation.ban`) as whole words."""
    return compiled(frozenset(patterns)).matches(text)
