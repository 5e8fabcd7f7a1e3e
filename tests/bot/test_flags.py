"""Inline flags: what they set, what they refuse, and that no input makes the parser fail any other way."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.flags import FlagError, format_flags, parse, parse_aspect, size_for


def test_every_documented_flag() -> None:
    flags = parse("a castle at dusk --ar 16:9 --seed 42 --no trees, cars --steps 30 --cfg 7 --model shapes")
    assert flags.prompt == "a castle at dusk"
    assert flags.fields == {
        "aspect": (16, 9),
        "seed": 42,
        "negative": "trees, cars",
        "steps": 30,
        "guidance": 7.0,
        "model": "shapes",
    }


def test_flags_anywhere_and_phone_dashes() -> None:
    assert parse("--seed 5 a cat —ar 4:3").fields == {"seed": 5, "aspect": (4, 3)}
    assert parse("--seed 5 a cat —ar 4:3").prompt == "a cat"
    assert parse("a cat --cfg=4.5").fields == {"guidance": 4.5}
    assert parse("a cat --sampler euler_a --count 2").fields == {"sampler": "euler_a", "count": 2}


def test_words_with_dashes_are_prompt() -> None:
    assert parse("a well--made chair - -- thing").fields == {}
    assert parse("a well--made chair").prompt == "a well--made chair"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("a --ar 0:0", "above zero"),
        ("a --ar 16", "16:9"),
        ("a --ar 9:1", "too narrow"),
        ("a --seed -1", "whole number"),
        ("a --seed 4294967296", "between 0 and"),
        ("a --steps 1e9", "whole number"),
        ("a --steps 0", "at least 1"),
        ("a --cfg nan", "0 or more"),
        ("a --cfg seven", "a number"),
        ("a --model Bad/Name", "not a model name"),
        ("a --sampler magic", "not one of"),
        ("a --no", "needs the things"),
        ("a --seed", "needs a value"),
        ("a --seed 1 --seed 2", "given twice"),
        ("a --quality 2", "not a flag I know"),
    ],
)
def test_garbage_is_refused_by_name(text: str, says: str) -> None:
    with pytest.raises(FlagError, match=says):
        parse(text)


def test_aspect_sizes_keep_the_pixel_count_in_multiples_of_8() -> None:
    assert size_for((1, 1), 512, 512) == (512, 512)
    assert size_for((16, 9), 512, 512) == (680, 384)
    assert size_for((16, 9), 32, 32) == (40, 24)
    assert size_for((1, 4), 32, 32) == (16, 64)
    assert parse_aspect(" 3 x 2 ") == (3, 2)


def test_format_flags_round_trips() -> None:
    fields = {"aspect": (5, 3), "seed": 9, "steps": 20, "guidance": 4.5, "model": "tiny", "sampler": "ddim", "count": 4}
    assert parse("x " + format_flags(fields)).fields == fields


PIECES = st.sampled_from(
    [
        "--",
        "—",
        " --ar ",
        " --seed ",
        " --no ",
        " --steps ",
        " --cfg ",
        " --model ",
        "=",
        ":",
        "1e9",
        "-1",
        "16:9",
        "0:0",
        " ",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=8) | PIECES, max_size=30).map("".join))
def test_parser_only_ever_raises_flag_error(text: str) -> None:
    try:
        flags = parse(text)
    except FlagError as exc:
        assert str(exc)
        return
    assert isinstance(flags.prompt, str)
    assert set(flags.fields) <= {"aspect", "seed", "negative", "steps", "guidance", "model", "sampler", "count"}
