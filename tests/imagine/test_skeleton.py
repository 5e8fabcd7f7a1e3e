"""imagine.skeleton: text folded to how it looks, from the TR39 data the confusable-homoglyphs package ships."""

from __future__ import annotations

import pytest

from imagine import skeleton


def test_confusables_come_from_the_packaged_tr39_data() -> None:
    table = skeleton.confusables()
    assert len(table) > 5000  # every non-ASCII member of a confusable class
    assert table["\u043e"] == "o" and table["\u0440"] == "p" and table["\u0456"] == "i"  # Cyrillic о р і
    assert all(not char.isascii() for char in table)  # ASCII digits and symbols are the blocklist's to read
    assert "rn" not in table.values()  # one character to several (m -> rn) is left out


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("G\u043eRE", "gore"),  # Cyrillic о, any case
        ("g\u00f3re", "gore"),  # accents
        ("\uff27\uff2f\uff32\uff25", "gore"),  # fullwidth
        ("g\u200bo\u200dr\u00ade", "gore"),  # zero-width space and joiner, soft hyphen
        ("\u0392\u0391\u039d", "ban"),  # Greek capitals: confusables before casefolding
        ("pom", "pom"),  # no m -> rn
        ("g0re 455", "g0re 455"),  # ASCII digits stay: a number may be a number
        ("\u65e5\u672c\u8a9e", "\u65e5\u672c\u8a9e"),  # other scripts pass through
    ],
)
def test_fold(text: str, folded: str) -> None:
    assert skeleton.fold(text) == folded
