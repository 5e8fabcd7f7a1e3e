"""Text as banned words see it: how a letter looks, not which code point wrote it.

`fold` applies NFKC and casefolding (`ＢＡＤ` -> bad), drops invisible format characters (zero-width spaces and
joiners) and combining marks after NFKD (`góre` -> gore), and maps every non-ASCII character to the look of its
Unicode TR39 confusable class (Cyrillic `о` -> o, Greek `ρ` -> p). The classes come from the Unicode
`confusables.txt` data that the `confusable-homoglyphs` package ships as JSON: nothing is downloaded at run time.
ASCII digits and symbols are not mapped here: whether `0` is a digit or an `o` depends on its word (`blocklist`).
One pass over the text with a per-character cache: linear in its length.
"""

from __future__ import annotations

import functools
import json
import string
import unicodedata
from importlib import resources

# Characters that never change the look of a word: format characters (zero-width space, joiners, direction
# marks, soft hyphen) and, after NFKD, non-spacing combining marks (accents).
_INVISIBLE = frozenset({"Cf", "Mn"})
# Direction marks the package wraps right-to-left characters in.
_MARKS = str.maketrans("", "", "\u200e\u200f")


def _plain(char: str) -> str:
    """A character casefolded and without its accents (what `fold` does to text, for one character)."""
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", char).casefold())
    return "".join(c for c in decomposed if unicodedata.category(c) not in _INVISIBLE)


def _preference(char: str) -> tuple[bool, bool, bool, int]:
    """The member that names a confusable class: an ASCII letter, then any ASCII, then the lowest code point."""
    return (char not in string.ascii_letters, not char.isascii(), not char.isalnum(), ord(char))


@functools.cache
def confusables() -> dict[str, str]:
    """Each non-ASCII character in a TR39 confusable class -> the class's look, casefolded (`о` -> `o`).

    The package's JSON lists, for each character, the characters confusable with it (both directions of every
    `confusables.txt` line). Joined into classes, they are the skeleton's classes; each is named by its ASCII
    letter where it has one. Mappings to several characters (`m` -> `rn`) are left out: `pom` would read `porn`.
    """
    data = resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text("utf-8")
    parent: dict[str, str] = {}

    def root(char: str) -> str:
        while parent.setdefault(char, char) != char:
            parent[char] = parent[parent[char]]
            char = parent[char]
        return char

    for key, entries in json.loads(data).items():
        source = key.translate(_MARKS)
        for entry in entries:
            target = entry["c"].translate(_MARKS)
            if len(source) == 1 and len(target) == 1:
                parent[root(source)] = root(target)
    classes: dict[str, list[str]] = {}
    for char in parent:
        classes.setdefault(root(char), []).append(char)
    table: dict[str, str] = {}
    for members in classes.values():
        look = _plain(min(members, key=_preference))
        for char in members:
            if not char.isascii():
                table[char] = look
    return table


class _Folding(dict[int, str]):
    """A `str.translate` table filled on first sight of each character (the text's alphabet, not Unicode's)."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        if unicodedata.category(char) in _INVISIBLE:
            look = ""
        elif char.isascii():
            look = char
        else:
            look = confusables().get(char, char)
        if len(self) < 65_536:  # a bounded cache: a prompt of rare characters cannot grow it without end
            self[code] = look
        return look


_FOLDING = _Folding()


def fold(text: str) -> str:
    """`text` as it looks: NFKC, casefolded, accents and invisible characters dropped, confusables mapped."""
    # Confusables first with case (Greek `Β` looks like B, its lowercase `β` like ß), then again casefolded.
    looks = unicodedata.normalize("NFKC", text).translate(_FOLDING)
    return unicodedata.normalize("NFKD", looks.casefold()).translate(_FOLDING)
