"""Make the everyday world's pictures once: `python -m models.everyday.sprites`.

Renders the chosen Noto Color Emoji pictures (Debian's `fonts-noto-color-emoji`, SIL OFL 1.1) with Pillow into one
sprite sheet (`assets/sprites.png`, SPRITE x SPRITE cells with alpha) and writes their names beside it
(`assets/sprites.json`: the CLDR short name and the `emoji` package's aliases, Unicode's character name), so that
training and tests need neither apt nor the font. Needs the font and the `emoji` package at generation time only.

Chosen: fully-qualified single-codepoint emoji (an optional VS16 after it). Left out, and why:
- ZWJ sequences and skin-tone variants: almost all are people in another role, gender or skin tone, pictures the
  sheet already has in their default form; the few new things among them (black cat, polar bear) can be added later.
- flags, keycaps, tag sequences: several codepoints each; flags are text-like stripes at 11 px.
- pictures that are mostly text or a symbol on a tile (buttons, arrows, marks, zodiac signs, squared and
  Japanese ideograph tiles, punctuation, maths): at 11 px they are coloured squares that differ only in a glyph.
- the clock faces: 24 near-identical pictures told apart only by the hands' angle.
"""

from __future__ import annotations

import argparse
import json
import re
import unicodedata
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFont

from .catalog import ASSETS, COLUMNS, SHEET, SPRITE, TABLE

FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
COPYRIGHT = Path("/usr/share/doc/fonts-noto-color-emoji/copyright")
LICENSE = ASSETS / "OFL.txt"
FONT_SIZE = 109
"""The one size Noto Color Emoji's bitmaps come in (136 x 128 px)."""

_TEXT_WORDS = re.compile(
    r"\b(button|arrow|mark|sign|symbol|ideograph|o.clock|thirty|keycap|flag|input|tile|aries|taurus|gemini|cancer"
    r"|leo|virgo|libra|scorpio|sagittarius|capricorn|aquarius|pisces|ophiuchus|copyright|registered|trade"
    r"|plus|minus|divide|multiply|equals|infinity|wavy dash|part alternation|bangbang|interrobang|hundred points"
    r"|dotted line face|peace|yin yang|om|atom|wheel of dharma|star of david|menorah|latin cross|orthodox cross"
    r"|star and crescent|khanda|place of worship|radioactive|biohazard|recycling|fleur|trident|beginner"
    r"|name badge|medical|mobile phone off|vibration|no |prohibited|cinema|signal|repeat|shuffle|record"
    r"|eject|play|pause|stop|fast|reverse|dim|bright|twisted|speech|thought|anger|zzz|dash|collision|dizzy"
    r"|sparkle|eight-pointed|eight-spoked|white flower|chart|check box|six-pointed|curly loop|currency"
    r"|diamond with a dot|customs|baggage claim|left luggage|passport control"
    r"|children crossing|clockwise|with slash|restroom|room"
    r"|water closet|potable water|information|wireless|antenna bars|muted)\b"
)
"""Words of CLDR short names that mark a picture as mostly text, a symbol on a tile, or a comic effect."""

_TEXT_UNICODE = ("SQUARED", "CIRCLED", "LATIN", "DIGIT", "NEGATIVE", "CJK", "KATAKANA", "HIRAGANA")


def clean(name: str) -> str:
    """':red_apple:' -> 'red apple'; ':piñata:' -> 'pinata'."""
    name = name.strip(":").replace("_", " ").replace("’", "'").lower()
    name = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^a-z0-9' &-]", " ", name).split())


def candidates() -> list[tuple[str, dict]]:
    """The fully-qualified single-codepoint emoji that are not text-like, in the emoji package's order."""
    import emoji

    chosen = []
    for char, data in emoji.EMOJI_DATA.items():
        base = char.replace("\ufe0f", "")
        if data["status"] != emoji.STATUS["fully_qualified"] or len(base) != 1:
            continue
        if 0x1F1E6 <= ord(base) <= 0x1F1FF or 0x1F3FB <= ord(base) <= 0x1F3FF:  # regional letters, skin tones
            continue
        short = clean(data["en"])
        uname = unicodedata.name(base, "")
        if _TEXT_WORDS.search(short + " ") or any(word in uname for word in _TEXT_UNICODE):
            continue
        chosen.append((char, data))
    return chosen


def render(font: ImageFont.FreeTypeFont, char: str) -> Image.Image | None:
    """The glyph in colour, cropped to its pixels and fitted (aspect kept, centred) into SPRITE x SPRITE."""
    canvas = Image.new("RGBA", (FONT_SIZE * 2, FONT_SIZE * 2), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((FONT_SIZE // 4, FONT_SIZE // 4), char, font=font, embedded_color=True)
    box = canvas.getchannel("A").point(lambda a: 255 if a > 8 else 0).getbbox()
    if box is None:
        return None
    glyph = canvas.crop(box)
    scale = SPRITE / max(glyph.size)
    size = (max(1, round(glyph.width * scale)), max(1, round(glyph.height * scale)))
    glyph = glyph.resize(size, Image.Resampling.LANCZOS)
    sprite = Image.new("RGBA", (SPRITE, SPRITE), (0, 0, 0, 0))
    sprite.paste(glyph, ((SPRITE - size[0]) // 2, (SPRITE - size[1]) // 2))
    return sprite


def _same(a: Image.Image, b: Image.Image) -> bool:
    return ImageChops.difference(a, b).getbbox() is None


def _license_text() -> str:
    """The SIL OFL 1.1 as Debian's copyright file quotes it (one leading space a line, '.' for blank lines)."""
    lines = COPYRIGHT.read_text().splitlines()
    start = max(i for i, line in enumerate(lines) if line.startswith("License:") and "SIL" in line)
    body = []
    for line in lines[start + 1 :]:
        if line and not line.startswith(" "):
            break
        body.append("" if line.strip() == "." else line[1:])
    header = "Noto Color Emoji: Copyright 2013-2017 Google Inc. (Debian package fonts-noto-color-emoji)\n\n"
    return header + "\n".join(body).strip() + "\n"


def build(out: Path = ASSETS) -> tuple[int, int]:
    """Write the sheet, the table and the licence; returns (pictures, sheet bytes)."""
    font = ImageFont.truetype(str(FONT), size=FONT_SIZE)
    missing = render(font, "\U000e0000")  # a codepoint the font lacks draws the same as any other it lacks
    rows: list[dict] = []
    sprites: list[Image.Image] = []
    for char, data in candidates():
        sprite = render(font, char)
        if sprite is None or (missing is not None and _same(sprite, missing)):
            continue
        base = char.replace("\ufe0f", "")
        short = clean(data["en"])
        # GitHub's shortcodes number a second picture of a thing ('cat2'): the number is no word anyone types
        aliases = [a for a in dict.fromkeys(clean(a).rstrip("0123456789") for a in data.get("alias", [])) if a != short]
        uname = unicodedata.name(base, "").lower()
        rows.append({"char": char, "short": short, "aliases": aliases, "unicode": uname, "version": data["E"]})
        sprites.append(sprite)
    sheet_rows = (len(sprites) + COLUMNS - 1) // COLUMNS
    sheet = Image.new("RGBA", (COLUMNS * SPRITE, sheet_rows * SPRITE), (0, 0, 0, 0))
    for i, sprite in enumerate(sprites):
        sheet.paste(sprite, ((i % COLUMNS) * SPRITE, (i // COLUMNS) * SPRITE))
    out.mkdir(parents=True, exist_ok=True)
    sheet.save(out / SHEET.name, optimize=True)
    meta = {"sprite": SPRITE, "columns": COLUMNS, "font": FONT.name, "font_size": FONT_SIZE, "objects": rows}
    (out / TABLE.name).write_text(json.dumps(meta, ensure_ascii=False, indent=1) + "\n")
    (out / LICENSE.name).write_text(_license_text())
    return len(rows), (out / SHEET.name).stat().st_size


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m models.everyday.sprites", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=ASSETS)
    a = p.parse_args(argv)
    count, size = build(a.out)
    print(f"{count} pictures, sheet {size / 1e6:.2f} MB, in {a.out}")


if __name__ == "__main__":
    main()
