"""imagine.blocklist: evasions that are caught, innocent prompts that pass, today's whole-word semantics kept (the
old regex as the oracle on plain text), patterns refused at add, and a cost that is linear by construction."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench import blocklist_regex
from imagine import blocklist, moderation

# Each (banned pattern, prompt that tries to slip past it). The five of issue 17 first.
EVASIONS = [
    ("gore", "a g\u043ere scene"),  # Cyrillic о
    ("gore", "g.o.r.e everywhere"),
    ("gore", "lots of g o r e"),
    ("gore", "g\u00f3re"),  # accent
    ("gore", "g0re"),
    ("gore", "GoRe"),  # mixed case
    ("gore", "\uff47\uff4f\uff52\uff45"),  # fullwidth
    ("gore", "\U0001d420\U0001d428\U0001d42b\U0001d41e"),  # mathematical bold
    ("gore", "g\u200do\u200dr\u200de"),  # zero-width joiners
    ("gore", "g\u200bore"),  # zero-width space
    ("gore", "go\u00adre"),  # soft hyphen
    ("gore", "g-o-r-e"),
    ("gore", "g_o_r_e"),
    ("gore", "g . o . r . e"),
    ("gore", "g\u0336o\u0336r\u0336e\u0336"),  # strike-through combining marks
    ("gore", "goooore"),
    ("gore", "6ore"),  # 6 for g, inside a word
    ("gore", "g0r3!"),
    ("gore", "\u0261\u1d0fre"),  # Latin script g, small capital o
    ("gore", "\u24d6\u24de\u24e1\u24d4"),  # circled letters
    ("porn", "\u0440orn"),  # Cyrillic р
    ("nazi", "N\u0410Z\u0406"),  # Cyrillic capitals А and І
    ("ban", "\u0392\u0391\u039d"),  # Greek capitals Β Α Ν
    ("ass", "kiss my a$$"),
    ("ass", "@ss"),
    ("ass", "a55hole and a55"),
    ("kill", "k1ll them"),
    ("kill", "ki!!"),
    ("blood bath", "a blood-bath"),
    ("blood bath", "a b1ood  b@th"),
    ("gor*", "a g0ry scene"),
    ("gor*", "GORY"),
]

# Prompts that must still pass, each beside the pattern they come close to.
INNOCENT = [
    ("ass", "a class of assistants with a bass guitar, passing the grass"),
    ("ass", "a car with 455 horsepower"),  # a number on its own stays a number
    ("ass", "a s sandwich"),  # single letters joined, but "as s" is not ass
    ("gore", "a gory gorge, a gorgeous ore, gores? no: forego"),
    ("gore", "g ore mining"),
    ("gore", "gore1 is a username"),  # a digit at the end of a word is not an e
    ("god", "a good dog"),  # two letters stay two: good is not god
    ("bot", "boots on a robot"),
    ("hell", "hello, shell, hellish"),
    ("kill", "skill, killer whale, kiln"),
    ("blood bath", "blood in the bath, a bloodbath"),  # a phrase's words stay whole words
    ("porn", "popcorn, pom-poms"),  # no m -> rn skeleton
    ("nazi", "nazir, a 14 88 count"),
    ("gor*", "forgot a gogo"),
    ("*ing", "a kingdom"),
]


@pytest.mark.parametrize(("pattern", "prompt"), EVASIONS)
def test_evasions_are_caught(pattern: str, prompt: str) -> None:
    assert blocklist.matches(prompt, [moderation.clean_pattern(pattern)]), (pattern, prompt)


def test_the_five_of_issue_17_passed_the_old_matcher() -> None:
    five = [prompt for _, prompt in EVASIONS[:5]]
    assert not any(blocklist_regex.matches(prompt, ["gore"]) for prompt in five)
    assert all(blocklist.matches(prompt, ["gore"]) for prompt in five)


@pytest.mark.parametrize(("pattern", "prompt"), INNOCENT)
def test_innocent_prompts_pass(pattern: str, prompt: str) -> None:
    assert not blocklist.matches(prompt, [moderation.clean_pattern(pattern)]), (pattern, prompt)


def test_every_evasion_against_one_full_blocklist() -> None:
    patterns = {moderation.clean_pattern(p) for p, _ in EVASIONS + INNOCENT}
    assert all(blocklist.matches(prompt, patterns) for _, prompt in EVASIONS)
    # Innocent against every pattern at once: only the ones whose own word is elsewhere in the list may match.
    assert not blocklist.matches("a class of assistants, a good dog, hello, skill, popcorn", patterns)


# Plain text (letters, spaces, punctuation) and patterns with `*`: the new matcher agrees with the old regex, once
# its additions for evasions (single letters as a word, repeated letters) are turned off.
_words = st.text("abc", min_size=1, max_size=3)
_pattern_word = st.builds(lambda w, i: w[:i] + "*" + w[i:], _words, st.integers(0, 3)) | _words
_patterns = st.lists(st.lists(_pattern_word, min_size=1, max_size=3).map(" ".join), min_size=1, max_size=3)


@settings(max_examples=400, deadline=None)
@given(text=st.text("abc .-_", max_size=16), patterns=_patterns)
def test_plain_text_matches_as_the_old_regex_did(text: str, patterns: list[str]) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(blocklist, "JOIN_GAP", -1)
        patch.setattr(blocklist, "REPEAT", 10**9)
        assert blocklist.Blocklist(patterns).matches(text) == blocklist_regex.matches(text, patterns)


def test_whole_words_and_wildcards() -> None:
    assert blocklist.matches("a GORY scene", ["gor*"]) and not blocklist.matches("a gorge", ["gore"])
    assert blocklist.matches("the thing", ["*ing"]) and blocklist.matches("bad-word", ["bad word"])
    assert blocklist.matches("kill! now", ["kill now"])  # punctuation after a word is still a separator
    assert not blocklist.matches("anything", [])


def test_too_many_wildcards_are_refused_naming_the_limit() -> None:
    assert moderation.clean_pattern("*f*ck*") == "*f*ck*"
    with pytest.raises(moderation.RuleError, match=f"at most {blocklist.MAX_WILDCARDS} `\\*`"):
        moderation.clean_pattern("a*a*a*a*a*a*z")
    with pytest.raises(moderation.RuleError, match="at least one letter"):
        moderation.clean_pattern("* - *")
    with pytest.raises(moderation.RuleError, match=f"at most {moderation.MAX_PATTERN_CHARS} characters"):
        moderation.clean_pattern("a" * (moderation.MAX_PATTERN_CHARS + 1))


def test_patterns_stored_before_the_limit_still_match() -> None:
    # Compiled as stored: the automaton is linear whatever the pattern, so an old one is not dropped.
    assert blocklist.matches("a" * 30 + "z", ["a*a*a*a*a*a*z"])
    assert not blocklist.matches("a" * 1000, ["a*a*a*a*a*a*z"])


def test_cost_is_linear_by_construction() -> None:
    """No timing here (bench/blocklist.py measures): the prompt's symbols and the automaton's size are linear."""
    text = "g.o.r.e g0re goooore " * 50
    assert len(blocklist.symbols(text)) <= 2 * len(text) + 2
    matcher = blocklist.Blocklist(["gore", "a*b"])
    matcher.matches("".join(chr(0x4E00 + i) for i in range(2000)) + " gore")  # 2,000 letters no pattern names
    assert len(matcher._steps) <= len("goreab") + 2  # cached steps: the patterns' letters, not the prompt's
    patterns = ["a*" * 4 + "z " * 40 for _ in range(3)]
    assert blocklist.Blocklist(patterns).size == sum(len(blocklist.pattern_words(p)) for p in patterns) + sum(
        len("".join(blocklist.pattern_words(p))) for p in patterns
    ) + len(patterns)
