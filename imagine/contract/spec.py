"""What a job asks for: the spec, its validation and the limits it is checked against, and its parameters text."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)

#: Sampler names a job may ask for; each maps to a diffusers scheduler in `models.loader`.
SAMPLERS: tuple[str, ...] = ("euler", "euler_a", "dpm++_2m", "dpm++_2m_karras", "ddim")
Sampler = Literal["euler", "euler_a", "dpm++_2m", "dpm++_2m_karras", "ddim"]
#: How each sampler is written in A1111-style parameters, the convention most image tools read.
SAMPLER_LABELS: dict[str, str] = {
    "euler": "Euler",
    "euler_a": "Euler a",
    "dpm++_2m": "DPM++ 2M",
    "dpm++_2m_karras": "DPM++ 2M Karras",
    "ddim": "DDIM",
}
Kind = Literal["image", "clip"]  # a clip is a short animation from a video family (MP4 or GIF, and a poster frame)
ClipFormat = Literal["mp4", "gif"]

MAX_SEED = 2**32 - 1
MODEL_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ALLOWED_CONTROL = {"\n", "\t"}


class SpecError(ValueError):
    """A job spec was refused; `field` names the offending field (dotted for nested ones)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class Limits(BaseModel):
    """Bounds a server sets on requests; configurable (see `imagine.settings`), checked by bot and worker."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_prompt_chars: int = 1000
    max_steps: int = 60
    max_pixels: int = 1024 * 1024
    max_side: int = 2048
    max_count: int = 4
    max_guidance: float = 30.0
    max_frames: int = 49


class Requester(BaseModel):
    """Who asked, and where the answer goes. All optional: a job from the CLI has no requester at all."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    guild_id: int | None = None
    channel_id: int | None = None
    user_id: int | None = None
    #: The message that asked (a reaction or a reply); late results reply to it.
    message_id: int | None = None
    application_id: int | None = None
    interaction_id: int | None = None
    #: Valid for 15 minutes. Masked in every repr and log; left out of the long-lived job record.
    interaction_token: SecretStr | None = None
    #: Largest file the result may upload, in bytes (the interaction's `attachment_size_limit`).
    upload_limit: int | None = Field(default=None, ge=1)
    #: The channel is age-restricted (Discord's NSFW flag): a model's safety checker may then be skipped.
    age_restricted: bool = False

    @field_serializer("interaction_token", when_used="json")
    def _reveal_token(self, token: SecretStr | None) -> str | None:
        # The worker needs the real token to post; JSON mode is only used for the queue payload.
        return token.get_secret_value() if token is not None else None


class InitImage(BaseModel):
    """A variation's starting picture: image `index` (0-based) of job `job_id`, redrawn at `strength` (0-1]."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    job_id: str = Field(pattern=JOB_ID.pattern)
    index: int = Field(ge=0, le=3)
    strength: float = Field(gt=0, le=1, allow_inf_nan=False)
    #: 1: a variation at the native size; 2: an upscale, redrawn by the model's own image-to-image at twice the size.
    scale: int = Field(default=1, ge=1, le=2)


class ModelDefaults(BaseModel):
    """What a model uses for any field a job leaves unset."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    width: int = Field(ge=8)
    height: int = Field(ge=8)
    steps: int = Field(ge=1)
    guidance: float = Field(ge=0)
    sampler: Sampler
    #: Clips only: frames per clip.
    frames: int | None = Field(default=None, ge=1)
    #: Clips only: playback speed, frames per second.
    fps: int | None = Field(default=None, ge=1, le=60)


class JobSpec(BaseModel):
    """One request for images. Unset generation fields (None) take the model's defaults in the worker.

    Build one with `JobSpec.parse(data, limits)` to get a `SpecError` naming the field on bad input.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Kind = "image"
    prompt: str
    negative_prompt: str = ""
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)
    steps: int | None = Field(default=None, ge=1)
    guidance: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    width: int | None = Field(default=None, ge=8)
    height: int | None = Field(default=None, ge=8)
    count: int = Field(default=1, ge=1)
    model: str | None = None
    sampler: Sampler | None = None
    #: Set for a variation: image-to-image from an earlier job's image.
    init_image: InitImage | None = None
    requester: Requester | None = None
    #: Clips only: frames (the model's default if unset).
    frames: int | None = Field(default=None, ge=1)
    #: Clips only: playback speed (the model's default if unset) and file format (MP4 if unset; GIF on request).
    fps: int | None = Field(default=None, ge=1, le=60)
    clip_format: ClipFormat | None = None
    #: LoRAs by name, each one the model's registry entry lists (members may choose only those).
    loras: tuple[str, ...] = Field(default=(), max_length=4)

    @field_validator("prompt", "negative_prompt")
    @classmethod
    def _clean_text(cls, value: str, info: ValidationInfo) -> str:
        value = value.strip()
        bad = [c for c in value if unicodedata.category(c) == "Cc" and c not in _ALLOWED_CONTROL]
        if bad:
            raise ValueError(f"contains a control character ({ord(bad[0]):#04x})")
        if info.field_name == "prompt" and not _has_visible(value):
            raise ValueError("is empty")
        return value

    @field_validator("model")
    @classmethod
    def _model_name(cls, value: str | None) -> str | None:
        if value is not None and not MODEL_NAME.match(value):
            raise ValueError("is not a model name (lowercase letters, digits, '_', '-', '.')")
        return value

    @field_validator("width", "height")
    @classmethod
    def _multiple_of_8(cls, value: int | None) -> int | None:
        if value is not None and value % 8:
            raise ValueError("must be a multiple of 8")
        return value

    @model_validator(mode="after")
    def _within_limits(self, info: ValidationInfo) -> JobSpec:
        limits = (info.context or {}).get("limits") or Limits()
        if len(self.prompt) > limits.max_prompt_chars:
            raise _FieldError("prompt", f"is longer than {limits.max_prompt_chars} characters")
        if len(self.negative_prompt) > limits.max_prompt_chars:
            raise _FieldError("negative_prompt", f"is longer than {limits.max_prompt_chars} characters")
        if self.steps is not None and self.steps > limits.max_steps:
            raise _FieldError("steps", f"must be at most {limits.max_steps}")
        if self.count > limits.max_count:
            raise _FieldError("count", f"must be at most {limits.max_count}")
        if self.guidance is not None and self.guidance > limits.max_guidance:
            raise _FieldError("guidance", f"must be at most {limits.max_guidance:g}")
        if self.frames is not None and self.frames > limits.max_frames:
            raise _FieldError("frames", f"must be at most {limits.max_frames}")
        for name in ("width", "height"):
            side = getattr(self, name)
            if side is not None and side > limits.max_side:
                raise _FieldError(name, f"must be at most {limits.max_side}")
        if self.width is not None and self.height is not None:
            if self.width * self.height * self.count > limits.max_pixels * limits.max_count:
                raise _FieldError("count", "too many pixels in one job; ask for fewer or smaller images")
            if self.width * self.height > limits.max_pixels:
                raise _FieldError("width", f"width x height must be at most {limits.max_pixels} pixels")
        return self

    @classmethod
    def parse(cls, data: Mapping[str, Any], limits: Limits | None = None) -> JobSpec:
        """Validate `data` (a JSON-shaped mapping) against the contract and `limits`, or raise `SpecError`."""
        try:
            return cls.model_validate(data, context={"limits": limits or Limits()})
        except ValidationError as exc:
            raise _spec_error(exc) from None

    def with_seed(self, seed: int) -> JobSpec:
        return self.model_copy(update={"seed": seed})

    def seeds(self) -> list[int]:
        """One seed per image: seed, seed+1, … (wrapping at 2**32), as A1111 and most bots do."""
        if self.seed is None:
            raise ValueError("the spec has no seed yet; the enqueuer picks one")
        return [(self.seed + i) % (MAX_SEED + 1) for i in range(self.count)]

    def resolved(self, model: str, defaults: ModelDefaults) -> JobSpec:
        """A copy with the model named and every unset generation field taken from `defaults`."""
        return self.model_copy(
            update={
                "model": model,
                "steps": self.steps if self.steps is not None else defaults.steps,
                "guidance": self.guidance if self.guidance is not None else defaults.guidance,
                "width": self.width if self.width is not None else defaults.width,
                "height": self.height if self.height is not None else defaults.height,
                "sampler": self.sampler if self.sampler is not None else defaults.sampler,
                "frames": self.frames if self.frames is not None or self.kind != "clip" else defaults.frames,
                "fps": self.fps if self.fps is not None or self.kind != "clip" else defaults.fps,
            }
        )

    def payload(self) -> dict[str, Any]:
        """The queue payload: JSON-safe, with the interaction token (the worker needs it to post)."""
        return self.model_dump(mode="json")

    def without_secrets(self) -> JobSpec:
        """A copy without the interaction token: what results and long-lived records keep."""
        if self.requester is None or self.requester.interaction_token is None:
            return self
        return self.model_copy(update={"requester": self.requester.model_copy(update={"interaction_token": None})})

    def public(self) -> dict[str, Any]:
        """JSON-safe and without the interaction token: for the long-lived job record and for results."""
        return self.without_secrets().model_dump(mode="json")


class _FieldError(ValueError):
    """Raised inside the model validator to name a field other than the model itself."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _has_visible(text: str) -> bool:
    """True when some character would show: not whitespace, not a control or format (zero-width) character."""
    return any(not c.isspace() and unicodedata.category(c) not in ("Cc", "Cf", "Zs") for c in text)


def _spec_error(exc: ValidationError) -> SpecError:
    err = exc.errors()[0]
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, _FieldError):
        return SpecError(cause.field, cause.message)
    loc = ".".join(str(p) for p in err["loc"]) or "spec"
    return SpecError(loc, _plain(err["type"], err["msg"], err.get("ctx") or {}))


#: pydantic's error types in words a member reads after the field's name ("steps must be a whole number").
_PLAIN = {
    "extra_forbidden": "is not a known field",
    "missing": "is required",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "finite_number": "must be a finite number",
    "string_type": "must be text",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_pattern_mismatch": "is not valid",
    "model_type": "is malformed",
    "dict_type": "is malformed",
}


def _plain(kind: str, message: str, ctx: Mapping[str, Any]) -> str:
    """A validation error as a short phrase, never pydantic's own wording ("Input should be ...")."""
    if kind in _PLAIN:
        return _PLAIN[kind]
    bounds = {
        "greater_than_equal": ("at least", "ge"),
        "less_than_equal": ("at most", "le"),
        "greater_than": ("more than", "gt"),
        "less_than": ("less than", "lt"),
    }
    if kind in bounds:
        words, key = bounds[kind]
        return f"must be {words} {ctx.get(key)}"
    if kind == "literal_error":
        return f"must be one of {str(ctx.get('expected', '')).replace(chr(39), '')}"
    if kind == "string_too_long":
        return f"is longer than {ctx.get('max_length')} characters"
    return message.removeprefix("Value error, ")


def parameters_text(spec: JobSpec, seed: int) -> str:
    """The A1111 `parameters` text for one image of a resolved spec (prompt, negative, then key: value pairs)."""
    lines = [spec.prompt]
    if spec.negative_prompt:
        lines.append(f"Negative prompt: {spec.negative_prompt}")
    sampler = SAMPLER_LABELS.get(spec.sampler or "", spec.sampler or "")
    lines.append(
        f"Steps: {spec.steps}, Sampler: {sampler}, CFG scale: {spec.guidance:g}, Seed: {seed}, "
        f"Size: {spec.width}x{spec.height}, Model: {spec.model}"
        + (f", Denoising strength: {spec.init_image.strength:g}" if spec.init_image is not None else "")
        + (f", Frames: {spec.frames}" if spec.kind == "clip" and spec.frames else "")
        + (f", FPS: {spec.fps}" if spec.kind == "clip" and spec.fps else "")
        + (f", LoRAs: {' '.join(spec.loras)}" if spec.loras else "")
    )
    return "\n".join(lines)
