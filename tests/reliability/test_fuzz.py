"""Hypothesis against everything a member's input passes through before a job exists: the prompt and flag parser,
the job-spec validation (nested parts included), and the upload checker. Each may refuse, by name, and nothing
else: no other exception, and nothing accepted that breaks the limits."""

from __future__ import annotations

import io
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from bot import flags
from imagine import images
from imagine.contract import MAX_SEED, JobSpec, Limits, SpecError

LIMITS = Limits(max_prompt_chars=200, max_steps=60, max_pixels=512 * 512, max_side=1024, max_count=4)

FLAG_WORDS = st.sampled_from(
    ["--ar", "--seed", "--no", "--steps", "--cfg", "--model", "--sampler", "--count", "—ar", "–seed", "--", "--x"]
)
VALUES = st.sampled_from(
    ["16:9", "0:0", "1:99999", "-1", "1e9", "nan", "inf", "-inf", "4.5", "0", "60", "61", "4294967296", "tiny",
     "euler_a", "DPM++ 2M", "=", "@everyone", "<@1>", "\u200b", "\x00", "\n", "🙂", "9" * 40]
)  # fmt: skip
TEXT = st.lists(st.text(max_size=12) | FLAG_WORDS | VALUES | st.just(" "), max_size=25).map(" ".join)


def spec_data(parsed: flags.Flags) -> dict[str, Any]:
    """What the bot builds from parsed flags (bot.jobs.Submitter.spec_from_fields, with a 32x32 model)."""
    fields = parsed.fields
    data: dict[str, Any] = {"prompt": parsed.prompt, "negative_prompt": fields.get("negative") or ""}
    for key in ("seed", "steps", "guidance", "count", "sampler", "model"):
        if fields.get(key) is not None:
            data[key] = fields[key]
    if fields.get("aspect") is not None:
        data["width"], data["height"] = flags.size_for(fields["aspect"], 32, 32)
    return data


def within_limits(spec: JobSpec) -> None:
    assert spec.prompt and spec.prompt == spec.prompt.strip() and len(spec.prompt) <= LIMITS.max_prompt_chars
    assert not any(ord(c) < 32 and c not in "\n\t" for c in spec.prompt + spec.negative_prompt)
    assert spec.steps is None or 1 <= spec.steps <= LIMITS.max_steps
    assert spec.seed is None or 0 <= spec.seed <= MAX_SEED
    assert spec.guidance is None or (math.isfinite(spec.guidance) and 0 <= spec.guidance <= LIMITS.max_guidance)
    assert 1 <= spec.count <= LIMITS.max_count
    if spec.width and spec.height:
        assert spec.width % 8 == 0 and spec.height % 8 == 0 and spec.width * spec.height <= LIMITS.max_pixels


@settings(max_examples=400, deadline=None)
@given(TEXT)
def test_prompt_and_flags_end_as_a_valid_spec_or_a_named_refusal(text: str) -> None:
    try:
        parsed = flags.parse(text)
    except flags.FlagError as refused:
        assert str(refused) and "Traceback" not in str(refused)
        return
    try:
        spec = JobSpec.parse(spec_data(parsed), LIMITS)
    except SpecError as refused:
        assert refused.field and refused.message and "Input should" not in refused.message
        return
    within_limits(spec)
    assert JobSpec.parse(spec.payload(), LIMITS) == spec  # what the worker re-checks is what the bot accepted


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
FIELDS = [
    "prompt", "negative_prompt", "seed", "steps", "guidance", "width", "height", "count", "model", "sampler",
    "kind", "init_image", "requester", "extra",
]  # fmt: skip
NESTED = st.fixed_dictionaries(
    {},
    optional={
        "job_id": st.text(max_size=70) | JSONISH,
        "index": st.integers(-2, 6) | JSONISH,
        "strength": st.floats() | JSONISH,
        "user_id": st.integers() | JSONISH,
        "interaction_token": st.text(max_size=10) | JSONISH,
        "upload_limit": st.integers() | JSONISH,
    },
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(FIELDS), JSONISH | NESTED | st.text(max_size=300), max_size=8))
def test_any_payload_from_redis_is_a_valid_spec_or_a_named_refusal(data: dict[str, Any]) -> None:
    try:
        spec = JobSpec.parse(data, LIMITS)
    except SpecError as refused:
        assert refused.field and refused.message and "Input should" not in refused.message
        return
    within_limits(spec)
    if spec.init_image is not None:
        assert 0 <= spec.init_image.index <= 3 and 0 < spec.init_image.strength <= 1


def _image(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.effect_noise((24, 24), 50).convert("RGB").save(out, fmt)
    return out.getvalue()


SEEDS = [_image("PNG"), _image("JPEG"), _image("WEBP"), _image("GIF"), _image("BMP")]


@st.composite
def mangled(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.integers(0, len(data) - 1))
        data[at] = draw(st.integers(0, 255))
    cut = draw(st.integers(1, len(data)))
    return bytes(data[:cut])


@settings(max_examples=300, deadline=None)
@given(mangled() | st.binary(max_size=200))
def test_any_upload_is_a_plain_png_or_a_named_refusal(data: bytes) -> None:
    try:
        png = images.sanitize(data)
    except images.ImageRefused as refused:
        assert str(refused)
        return
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG" and image.mode == "RGB" and max(image.size) <= images.KEEP_SIDE
