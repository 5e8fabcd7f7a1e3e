"""What members see of a job, shared by the bot and the workers: button ids, the button rows, status lines.

The bot answers a button press and the worker posts the buttons, but they never import each other; this module is
the one place both read, so a custom id the worker writes is always one the bot can parse back (even after a
restart of either). Plain JSON shapes only: no discord.py here, because the worker posts over raw REST.
"""

from __future__ import annotations

import re
from typing import Any

from imagine.contract import JOB_ID, SAMPLER_LABELS, JobSpec

#: Every custom id of ours starts with this, so other bots' components and ours never collide.
PREFIX = "imagine"

UPSCALE, VARY, REROLL, REMIX, INFO, DELETE = "u", "v", "r", "e", "i", "d"
_JOB = JOB_ID.pattern.strip("^$")
#: `imagine:u:<job>:2` (U2) and `imagine:v:<job>:2` (V2); the index is 1-based, as members read it.
INDEXED_TEMPLATE = rf"{PREFIX}:(?P<action>[uv]):(?P<job>{_JOB}):(?P<index>[1-4])"
#: `imagine:r:<job>` re-roll, `e` remix, `i` info, `d` delete.
PLAIN_TEMPLATE = rf"{PREFIX}:(?P<action>[reid]):(?P<job>{_JOB})"

#: Reactions that act on a result, as the design asks: re-roll, a variation of image n, delete.
REACTION_REROLL = "🔄"
REACTION_DELETE = "❌"
REACTION_VARY = {"1️⃣": 1, "2️⃣": 2, "3️⃣": 3, "4️⃣": 4}

BUTTON, ACTION_ROW = 2, 1
PRIMARY, SECONDARY, SUCCESS, DANGER = 1, 2, 3, 4


def custom_id(action: str, job_id: str, index: int | None = None) -> str:
    """The custom id of one button; at most 100 characters, as Discord requires (job ids are at most 64)."""
    if action in (UPSCALE, VARY):
        if index is None or not 1 <= index <= 4:
            raise ValueError("U and V buttons need an image number 1-4")
        return f"{PREFIX}:{action}:{job_id}:{index}"
    if action not in (REROLL, REMIX, INFO, DELETE):
        raise ValueError(f"unknown button action {action!r}")
    return f"{PREFIX}:{action}:{job_id}"


def parse_custom_id(value: str) -> tuple[str, str, int | None] | None:
    """(action, job id, index or None) for one of our custom ids, else None."""
    match = re.fullmatch(INDEXED_TEMPLATE, value)
    if match:
        return match["action"], match["job"], int(match["index"])
    match = re.fullmatch(PLAIN_TEMPLATE, value)
    if match:
        return match["action"], match["job"], None
    return None


def _button(label: str | None, cid: str, style: int = SECONDARY, emoji: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {"type": BUTTON, "style": style, "custom_id": cid}
    if label:
        button["label"] = label
    if emoji:
        button["emoji"] = {"name": emoji}
    return button


def result_components(job_id: str, count: int) -> list[dict[str, Any]]:
    """The rows under a result: U1-Un and 🔄, V1-Vn and ✏️, then ℹ️ and 🗑️ (one image: no U, it is full size)."""
    rows: list[list[dict[str, Any]]] = []
    reroll = _button(None, custom_id(REROLL, job_id), emoji="🔄")
    remix = _button(None, custom_id(REMIX, job_id), emoji="✏️")
    info = _button(None, custom_id(INFO, job_id), emoji="ℹ️")
    delete = _button(None, custom_id(DELETE, job_id), DANGER, emoji="🗑️")
    if count > 1:
        rows.append([_button(f"U{i}", custom_id(UPSCALE, job_id, i)) for i in range(1, count + 1)] + [reroll])
        rows.append([_button(f"V{i}", custom_id(VARY, job_id, i)) for i in range(1, count + 1)] + [remix])
        rows.append([info, delete])
    else:
        rows.append([_button("V1", custom_id(VARY, job_id, 1)), reroll, remix, info, delete])
    return [{"type": ACTION_ROW, "components": row} for row in rows]


def clip_components(job_id: str) -> list[dict[str, Any]]:
    """The row under a clip: 🔄 re-roll, ℹ️ info, 🗑️ delete (a clip has no variations or upscales)."""
    row = [
        _button(None, custom_id(REROLL, job_id), emoji="🔄"),
        _button(None, custom_id(INFO, job_id), emoji="ℹ️"),
        _button(None, custom_id(DELETE, job_id), DANGER, emoji="🗑️"),
    ]
    return [{"type": ACTION_ROW, "components": row}]


# --- Text. Every line that echoes a prompt goes out with allowed mentions none (see `NO_MENTIONS`). ---

#: `allowed_mentions` for any message that echoes a prompt: `@everyone` or `<@id>` typed in a prompt pings nobody.
NO_MENTIONS: dict[str, Any] = {"parse": []}


def only_user(user_id: int | None) -> dict[str, Any]:
    """`allowed_mentions` that may ping the requester and nobody else."""
    return {"parse": [], "users": [str(user_id)] if user_id else [], "replied_user": False}


def short(text: str, limit: int = 300) -> str:
    """A prompt cut for a one-line echo, with code-ish characters that break bold text left alone."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def echo(text: str, limit: int = 300) -> str:
    """A member's text (a prompt) as it goes into a message: cut like `short`, then markdown escaped, masked links
    (`[text](url)`) and headings included, so a prompt can neither dress up the bot's message nor hide a link in it."""
    from discord.utils import escape_markdown

    escaped = escape_markdown(short(text, limit), ignore_links=False)
    return escaped.replace("[", "\\[").replace("]", "\\]").replace("<", "<\u200b")


def _who(spec: JobSpec) -> str:
    user = spec.requester.user_id if spec.requester else None
    return f" — <@{user}>" if user else ""


def headline(spec: JobSpec) -> str:
    """`**prompt** — @member`, the first line of every message about a job."""
    return f"**{echo(spec.prompt)}**{_who(spec)}"


def queued_text(spec: JobSpec, position: int) -> str:
    """`position` is 1-based: 1 means next; 0 means not known yet."""
    return f"{headline(spec)}\n⏳ " + (f"#{position} in queue" if position else "queued")


def starting_text(spec: JobSpec) -> str:
    return f"{headline(spec)}\n⚙️ starting…"


def progress_text(spec: JobSpec, step: int, total: int) -> str:
    filled = round(10 * step / max(total, 1))
    return f"{headline(spec)}\n🎨 generating {step}/{total} `{'█' * filled}{'░' * (10 - filled)}`"


def parameters_line(spec: JobSpec, seeds: list[int] | None = None) -> str:
    """One line of what a result was made with (the spec must be resolved: steps, size and model set)."""
    seed = f"{seeds[0]}" if seeds and len(seeds) == 1 else f"{seeds[0]}–{seeds[-1]}" if seeds else f"{spec.seed}"
    parts = [
        f"seed {seed}",
        f"{spec.steps} steps",
        f"cfg {spec.guidance:g}" if spec.guidance is not None else "",
        f"{spec.width}x{spec.height}" if spec.width and spec.height else "",
        SAMPLER_LABELS.get(spec.sampler or "", spec.sampler or ""),
        f"model {spec.model}" if spec.model else "",
    ]
    if spec.init_image is not None:
        parts.append(f"variation of image {spec.init_image.index + 1} (strength {spec.init_image.strength:g})")
    if spec.kind == "clip":
        parts.append(f"{spec.frames} frames at {spec.fps} fps" if spec.frames and spec.fps else "clip")
    return " · ".join(p for p in parts if p)


def result_text(spec: JobSpec, seeds: list[int]) -> str:
    lines = [headline(spec)]
    if spec.negative_prompt:
        lines.append(f"-# not: {echo(spec.negative_prompt, 200)}")
    lines.append(f"-# {parameters_line(spec, seeds)}")
    return "\n".join(lines)


def late_text(spec: JobSpec, seeds: list[int]) -> str:
    """A result posted as a new message (the interaction expired, or its message is gone): it mentions the member,
    the only one it may ping."""
    return result_text(spec, seeds) + "\n-# (a new message: the request is over 15 minutes old, or its message is gone)"


def failed_text(spec: JobSpec, error: str) -> str:
    return f"{headline(spec)}\n❌ {short(error, 300)}"


def info_text(spec: JobSpec, seeds: list[int] | None) -> str:
    """The full parameters, for the ℹ️ button (ephemeral)."""
    lines = [f"**Prompt:** {echo(spec.prompt, 1200)}"]
    if spec.negative_prompt:
        lines.append(f"**Negative:** {echo(spec.negative_prompt, 400)}")
    lines.append(f"**Seeds:** {', '.join(str(s) for s in seeds) if seeds else spec.seed}")
    lines.append(f"**Parameters:** {parameters_line(spec, seeds)}")
    if spec.init_image is not None:
        lines.append(f"**Source:** job `{spec.init_image.job_id}` image {spec.init_image.index + 1}")
    return "\n".join(lines)
