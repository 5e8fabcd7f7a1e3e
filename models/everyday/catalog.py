"""The everyday world's objects: the committed sprite sheet and its names, loaded once.

`assets/sprites.png` holds every picture in a SPRITE x SPRITE cell with alpha (made by `models.everyday.sprites`);
`assets/sprites.json` names them. 48 px a cell: the 32 px world draws objects at 11 or 19 px and a 64 px one at
22 or 38 px, so every size is a downscale (anti-aliased, never blurred up), at about 3 MB for the whole sheet.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from PIL import Image

ASSETS = Path(__file__).resolve().parent / "assets"
SHEET = ASSETS / "sprites.png"
TABLE = ASSETS / "sprites.json"
SPRITE = 48
COLUMNS = 40


@dataclass(frozen=True)
class EverydayObject:
    """One picture: its index on the sheet and what it is called."""

    index: int
    char: str
    short: str
    """CLDR short name, cleaned: 'red apple', 'cat face'."""
    aliases: tuple[str, ...]
    """Other names from the emoji package: 'apple', 'cat'."""
    unicode: str
    """Unicode's character name, lowercased: 'red apple', 'cat face'."""

    @property
    def names(self) -> tuple[str, ...]:
        """Every distinct name, the short name first."""
        return tuple(dict.fromkeys((self.short, *self.aliases, self.unicode)))


@cache
def objects() -> tuple[EverydayObject, ...]:
    rows = json.loads(TABLE.read_text())["objects"]
    return tuple(
        EverydayObject(i, r["char"], r["short"], tuple(r["aliases"]), r["unicode"]) for i, r in enumerate(rows)
    )


@cache
def by_short_name() -> dict[str, EverydayObject]:
    return {o.short: o for o in objects()}


@cache
def _sheet() -> Image.Image:
    with Image.open(SHEET) as image:
        return image.convert("RGBA")


@cache
def sprite(index: int) -> Image.Image:
    """The object's picture, SPRITE x SPRITE, RGBA (cached: do not modify it)."""
    x, y = (index % COLUMNS) * SPRITE, (index // COLUMNS) * SPRITE
    return _sheet().crop((x, y, x + SPRITE, y + SPRITE))


@cache
def sprite_at(index: int, side: int) -> Image.Image:
    """The picture scaled to side x side (alpha-aware LANCZOS), cached per size."""
    return sprite(index).resize((side, side), Image.Resampling.LANCZOS)
