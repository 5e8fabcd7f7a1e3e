"""Inline flags in a prompt, for people used to them: `a castle --ar 16:9 --seed 42 --no trees --steps 30 --cfg 7`.

Pure functions, no Discord and no Redis, so the parser is fuzzed on its own. A flag's value is the next word,
except `--no`, which takes everything up to the next flag (`--no trees, cars`). Phones turn `--` into an em dash,
so `—ar` counts too. Anything that looks like a flag but is not one is refused by name rather than drawn.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from imagine.contract import MAX_SEED, MODEL_NAME, SAMPLERS

#: Flag spellings and the field each sets.
ALIASES: dict[str, str] = {
    "ar": "aspect",
    "aspect": "aspect",
    "seed": "seed",
    "no": "negative",
    "steps": "steps",
    "cfg": "guidance",
    "guidance": "guidance",
    "model": "model",
    "sampler": "sampler",
    "count": "count",
}
#: Flags members are told about (aliases left out).
DOCUMENTED = ("--ar W:H", "--seed N", "--no TEXT", "--steps N", "--cfg X", "--model NAME", "--sampler NAME")

#: The widest aspect ratio accepted either way (Discord shows anything wider as a sliver).
MAX_RATIO = 4.0

_FLAG = re.compile(r"(?:(?<=\s)|^)(?:--|—|–)([A-Za-z][\w-]*)(?=\s|=|$)")


class FlagError(ValueError):
    """A flag the member wrote cannot be used; the message says which and why, fit to show as is."""


@dataclass
class Flags:
    """The prompt with its flags taken out, and the fields they set (only those given)."""

    prompt: str
    fields: dict[str, Any] = field(default_factory=dict)


def parse(text: str) -> Flags:
    """Split `text` into prompt and flags; raise `FlagError` for unknown flags or bad values."""
    matches = list(_FLAG.finditer(text))
    if not matches:
        return Flags(text.strip())
    prompt_parts = [text[: matches[0].start()]]
    fields: dict[str, Any] = {}
    for i, match in enumerate(matches):
        name = match.group(1).lower()
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        rest = text[match.end() : end].lstrip("=").strip()
        target = ALIASES.get(name)
        if target is None:
            raise FlagError(f"`--{_clip(name)}` is not a flag I know; use {', '.join(DOCUMENTED)}")
        if target in fields:
            raise FlagError(f"`--{name}` is given twice")
        if target == "negative":
            value, leftover = rest, ""
            if not value:
                raise FlagError("`--no` needs the things to leave out, e.g. `--no trees`")
        else:
            value, _, leftover = rest.partition(" ")
            if not value:
                raise FlagError(f"`--{name}` needs a value")
        fields[target] = _convert(target, name, value)
        prompt_parts.append(leftover)
    prompt = " ".join(p.strip() for p in prompt_parts if p.strip())
    return Flags(prompt, fields)


def _clip(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _convert(target: str, name: str, value: str) -> Any:
    shown = _clip(value)
    if target == "aspect":
        return parse_aspect(value)
    if target in ("seed", "steps", "count"):
        if not re.fullmatch(r"[0-9]{1,12}", value):
            raise FlagError(f"`--{name} {shown}` must be a whole number")
        number = int(value)
        if target == "seed" and number > MAX_SEED:
            raise FlagError(f"`--seed` must be between 0 and {MAX_SEED}")
        if target in ("steps", "count") and number < 1:
            raise FlagError(f"`--{name}` must be at least 1")
        return number
    if target == "guidance":
        try:
            scale = float(value)
        except ValueError:
            raise FlagError(f"`--{name} {shown}` must be a number, e.g. 7 or 4.5") from None
        if not math.isfinite(scale) or scale < 0:
            raise FlagError(f"`--{name}` must be a number of 0 or more")
        return scale
    if target == "model":
        if not MODEL_NAME.match(value.lower()):
            raise FlagError(f"`--model {shown}` is not a model name")
        return value.lower()
    if target == "sampler":
        sampler = value.lower().replace(" ", "_")
        if sampler not in SAMPLERS:
            raise FlagError(f"`--sampler {shown}` is not one of {', '.join(SAMPLERS)}")
        return sampler
    return value


def parse_aspect(value: str) -> tuple[int, int]:
    """`16:9` -> (16, 9), refusing zero, absurd numbers and ratios wider than 4:1."""
    match = re.fullmatch(r"\s*([0-9]{1,4})\s*[:x/]\s*([0-9]{1,4})\s*", value)
    if not match:
        raise FlagError(f"aspect `{_clip(value)}` must look like 16:9")
    w, h = int(match[1]), int(match[2])
    if w == 0 or h == 0:
        raise FlagError("an aspect ratio needs two numbers above zero, e.g. 16:9")
    if max(w / h, h / w) > MAX_RATIO:
        raise FlagError(f"aspect {w}:{h} is too narrow; keep it within 1:{MAX_RATIO:g} and {MAX_RATIO:g}:1")
    return w, h


def size_for(aspect: tuple[int, int], base_width: int, base_height: int) -> tuple[int, int]:
    """Width and height (multiples of 8) with about the model's native pixel count, in the asked-for ratio."""
    w, h = aspect
    area = base_width * base_height
    width = math.sqrt(area * w / h)
    height = width * h / w
    return max(8, round(width / 8) * 8), max(8, round(height / 8) * 8)


def format_flags(fields: dict[str, Any]) -> str:
    """Flags back as text (for the remix form): the inverse of `parse` on the fields it knows."""
    parts = []
    if "aspect" in fields:
        w, h = fields["aspect"]
        parts.append(f"--ar {w}:{h}")
    for key, flag in (
        ("seed", "seed"),
        ("steps", "steps"),
        ("guidance", "cfg"),
        ("model", "model"),
        ("sampler", "sampler"),
        ("count", "count"),
    ):
        if fields.get(key) is not None:
            value = fields[key]
            parts.append(f"--{flag} {value:g}" if isinstance(value, float) else f"--{flag} {value}")
    return " ".join(parts)
