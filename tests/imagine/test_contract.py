"""imagine/contract: the spec's validation names the field, limits bound it, secrets stay secret."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imagine.contract import (
    MAX_SEED,
    Done,
    Failed,
    JobSpec,
    Limits,
    ModelDefaults,
    Progress,
    Requester,
    SpecError,
    Started,
    parameters_text,
    parse_event,
)


def test_a_minimal_spec_leaves_generation_fields_to_the_model() -> None:
    spec = JobSpec.parse({"prompt": "  a red circle  "})
    assert spec.prompt == "a red circle"
    assert (spec.kind, spec.count, spec.negative_prompt) == ("image", 1, "")
    assert spec.seed is spec.steps is spec.guidance is spec.width is spec.model is spec.sampler is None


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"prompt": ""}, "prompt"),
        ({"prompt": " \n\t "}, "prompt"),
        ({"prompt": "\u200b\u200b\ufeff"}, "prompt"),
        ({"prompt": "a\x00b"}, "prompt"),
        ({"prompt": "a\x1b[31mred"}, "prompt"),
        ({"prompt": "x" * 1001}, "prompt"),
        ({"prompt": "ok", "negative_prompt": "x" * 1001}, "negative_prompt"),
        ({"prompt": "ok", "negative_prompt": "\x07"}, "negative_prompt"),
        ({}, "prompt"),
        ({"prompt": 42}, "prompt"),
        ({"prompt": "ok", "steps": 0}, "steps"),
        ({"prompt": "ok", "steps": 61}, "steps"),
        ({"prompt": "ok", "steps": 1e9}, "steps"),
        ({"prompt": "ok", "steps": "many"}, "steps"),
        ({"prompt": "ok", "count": 0}, "count"),
        ({"prompt": "ok", "count": 5}, "count"),
        ({"prompt": "ok", "seed": -1}, "seed"),
        ({"prompt": "ok", "seed": MAX_SEED + 1}, "seed"),
        ({"prompt": "ok", "guidance": -1}, "guidance"),
        ({"prompt": "ok", "guidance": float("nan")}, "guidance"),
        ({"prompt": "ok", "guidance": 31}, "guidance"),
        ({"prompt": "ok", "width": 33}, "width"),
        ({"prompt": "ok", "height": 0}, "height"),
        ({"prompt": "ok", "width": 4096}, "width"),
        ({"prompt": "ok", "width": 2048, "height": 2048}, "width"),
        ({"prompt": "ok", "sampler": "k_lms"}, "sampler"),
        ({"prompt": "ok", "model": "../etc"}, "model"),
        ({"prompt": "ok", "model": "Big Model"}, "model"),
        ({"prompt": "ok", "kind": "video"}, "kind"),
        ({"prompt": "ok", "stepz": 3}, "stepz"),
        ({"prompt": "ok", "requester": {"user_id": "me"}}, "requester.user_id"),
        ({"prompt": "ok", "requester": {"token": "x"}}, "requester.token"),
    ],
)
def test_invalid_specs_are_refused_with_the_field_named(data: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as refused:
        JobSpec.parse(data)
    assert refused.value.field == field
    assert str(refused.value).startswith(f"{field}: ")
    assert refused.value.message and "Value error" not in refused.value.message


def test_limits_are_configurable() -> None:
    strict = Limits(max_steps=10, max_count=2, max_prompt_chars=5)
    assert JobSpec.parse({"prompt": "ok", "steps": 10}, strict).steps == 10
    for data, field in [({"steps": 11}, "steps"), ({"count": 3}, "count"), ({"prompt": "sixsix"}, "prompt")]:
        with pytest.raises(SpecError) as refused:
            JobSpec.parse({"prompt": "ok", **data}, strict)
        assert refused.value.field == field


def test_emoji_with_zero_width_joiners_is_a_fine_prompt() -> None:
    assert JobSpec.parse({"prompt": "👨\u200d👩\u200d👧 at the beach"}).prompt.endswith("beach")


def test_seeds_count_up_from_the_seed_and_wrap() -> None:
    assert JobSpec(prompt="x", seed=5, count=4).seeds() == [5, 6, 7, 8]
    assert JobSpec(prompt="x", seed=MAX_SEED, count=2).seeds() == [MAX_SEED, 0]
    with pytest.raises(ValueError):
        JobSpec(prompt="x").seeds()


def test_resolved_fills_only_the_unset_fields() -> None:
    defaults = ModelDefaults(width=32, height=32, steps=20, guidance=4.0, sampler="dpm++_2m")
    spec = JobSpec(prompt="x", steps=5, sampler="ddim").resolved("shapes", defaults)
    assert (spec.model, spec.steps, spec.sampler, spec.guidance, spec.width, spec.height) == (
        "shapes",
        5,
        "ddim",
        4.0,
        32,
        32,
    )


def test_the_interaction_token_travels_in_the_payload_only() -> None:
    spec = JobSpec(prompt="x", requester=Requester(guild_id=1, interaction_token="s3cret"))
    assert "s3cret" not in repr(spec) and "s3cret" not in str(spec)
    assert spec.payload()["requester"]["interaction_token"] == "s3cret"
    assert json.loads(json.dumps(spec.payload())) == spec.payload()
    assert spec.public()["requester"] == {**spec.payload()["requester"], "interaction_token": None}
    assert JobSpec.parse(spec.payload()) == spec


def test_parameters_text_follows_a1111() -> None:
    spec = JobSpec(
        prompt="a red circle",
        negative_prompt="blurry",
        steps=20,
        guidance=4.0,
        width=32,
        height=32,
        sampler="dpm++_2m_karras",
        model="shapes",
        seed=1,
    )
    assert parameters_text(spec, 42) == (
        "a red circle\nNegative prompt: blurry\n"
        "Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 4, Seed: 42, Size: 32x32, Model: shapes"
    )
    plain = spec.model_copy(update={"negative_prompt": "", "guidance": 7.5})
    assert parameters_text(plain, 42).splitlines()[1].startswith("Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7.5")


@pytest.mark.parametrize(
    "event",
    [
        Started(job_id="j", worker="w", attempt=2, ts=1.0),
        Progress(job_id="j", step=3, total=20, preview_png="aGk=", ts=1.0),
        Done(job_id="j", ts=1.0),
        Failed(job_id="j", error="steps: must be at most 60", retrying=False, ts=1.0),
    ],
)
def test_events_round_trip_through_json(event: Started | Progress | Done | Failed) -> None:
    assert parse_event(event.model_dump_json()) == event


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["prompt", "negative_prompt", "seed", "steps", "guidance", "width", "height", "count", "x"]),
        st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=30), st.booleans()),
    )
)
def test_any_input_is_either_a_spec_or_a_named_refusal(data: dict[str, Any]) -> None:
    try:
        spec = JobSpec.parse(data)
    except SpecError as refused:
        assert refused.field
    else:
        assert spec.prompt.strip() == spec.prompt and spec.prompt
