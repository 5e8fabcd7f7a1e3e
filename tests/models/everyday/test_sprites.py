"""Where the font and the emoji package are installed, the sprite script makes exactly the committed sheet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.everyday.catalog import SHEET, TABLE
from models.everyday.sprites import FONT, build, clean

emoji = pytest.importorskip("emoji", reason="recipe-time only: pip install emoji")
pytestmark = pytest.mark.skipif(not FONT.is_file(), reason="recipe-time only: apt-get install fonts-noto-color-emoji")


def test_the_script_makes_the_committed_sheet_and_names(tmp_path: Path) -> None:
    build(tmp_path)
    assert json.loads((tmp_path / TABLE.name).read_text()) == json.loads(TABLE.read_text())
    assert (tmp_path / SHEET.name).read_bytes() == SHEET.read_bytes()
    assert "SIL OPEN FONT LICENSE Version 1.1" in (tmp_path / "OFL.txt").read_text()


def test_flags_keycaps_skin_tones_sequences_and_text_are_left_out() -> None:
    chars = {row["char"] for row in json.loads(TABLE.read_text())["objects"]}
    for left_out in ("🇫🇷", "1️⃣", "👍🏽", "🐈‍⬛", "🆗", "♈", "🕖", "➕"):
        assert left_out not in chars
    assert {"🍎", "🐈", "🍕", "🚀"} <= chars
    assert clean(":piñata:") == "pinata"
