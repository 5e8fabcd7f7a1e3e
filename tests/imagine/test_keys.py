"""imagine/keys.py: every key is namespaced, and a job id cannot escape its key."""

from __future__ import annotations

import pytest

from imagine import keys


def test_every_key_starts_with_the_prefix() -> None:
    names = [keys.IMAGE_QUEUE, keys.MODELS, keys.job("a1"), keys.progress("a1"), keys.delivered("a1")]
    names += [keys.guild(1, "settings"), keys.member(1, 2, "defaults")]
    assert all(name.startswith("imagine:") for name in names)
    assert keys.job("abc") == "imagine:job:abc"
    assert keys.member(10, 20, "defaults") == "imagine:member:10:20:defaults"


@pytest.mark.parametrize("bad", ["", "a:b", "../x", "a b", "x" * 65, "*"])
def test_bad_job_ids_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        keys.job(bad)
