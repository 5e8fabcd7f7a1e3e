"""The tokenizer drops words it does not know, so free phrasing reads as the world's own words."""

from __future__ import annotations

from models.shapes.architecture import make_tokenizer


def ids(text: str) -> list[int]:
    return make_tokenizer()(text).input_ids


def test_unknown_words_and_punctuation_are_ignored() -> None:
    assert ids("Please draw a RED star, top-left corner!! thanks") == ids("a red star top left corner")


def test_empty_prompt_is_just_the_markers() -> None:
    tokenizer = make_tokenizer()
    assert ids("") == [tokenizer.bos_token_id, tokenizer.eos_token_id] == ids("xyzzy qwerty")


def test_long_prompts_truncate_to_the_model_length() -> None:
    tokenizer = make_tokenizer()
    out = tokenizer("red " * 100, padding="max_length", max_length=tokenizer.model_max_length, truncation=True)
    assert len(out.input_ids) == tokenizer.model_max_length
