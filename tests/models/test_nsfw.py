"""The registry's NSFW policy (worker/safety.py): a model's own safety checker runs per job where the policy says."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from PIL import Image

from imagine import queue
from imagine.contract import JobSpec, Requester
from models.registry import ModelEntry
from tests.helpers import run_burst
from worker import safety


def run(conn: Any, settings: Any, ctx: Any, **fields: Any) -> Any:
    spec = JobSpec(**{"prompt": "a person", "seed": 2, "model": "sd15-filtered", "count": 2, **fields})
    job = queue.enqueue(conn, spec, settings)
    run_burst(ctx)
    return queue.wait(conn, job.id, timeout=30)


def black(png: bytes) -> bool:
    with Image.open(io.BytesIO(png)) as picture:
        return not np.asarray(picture.convert("RGB")).any()


def test_outside_age_restricted_channels_flagged_images_are_blacked_out(conn, family_settings, family_ctx) -> None:
    # The test checker flags everything, so the policy is what decides.
    result = run(conn, family_settings, family_ctx, requester=Requester(guild_id=1, user_id=2))
    assert result.filtered == [0, 1]
    assert all(black(image.png_bytes()) for image in result.images)


def test_in_an_age_restricted_channel_the_filter_policy_lets_images_through(conn, family_settings, family_ctx) -> None:
    result = run(conn, family_settings, family_ctx, requester=Requester(guild_id=1, user_id=2, age_restricted=True))
    assert result.filtered == []
    assert not any(black(image.png_bytes()) for image in result.images)


def test_the_checker_is_detached_so_the_pipeline_never_runs_it_itself(family_ctx) -> None:
    resident, _ = family_ctx.pipelines.get(family_ctx.registry.get("sd15-filtered"))
    assert resident.pipe.safety_checker is None and resident.checker is not None
    # "allow" does not even load it (same folder, other entry).
    allowed, _ = family_ctx.pipelines.get(family_ctx.registry.get("sd15"))
    assert allowed.checker is None


def _entry(nsfw: str) -> ModelEntry:
    return ModelEntry(
        name="m",
        source="tiny",
        width=32,
        height=32,
        steps=2,
        guidance=1,
        sampler="euler",
        nsfw=nsfw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("nsfw", "age_restricted", "enabled", "expected"),
    [
        ("filter", False, True, True),
        ("filter", True, True, False),
        ("always", True, True, True),
        ("allow", False, True, False),
        ("filter", False, False, False),  # IMAGINE_SAFETY_CHECKER=false turns it off everywhere
    ],
)
def test_the_policy(nsfw: str, age_restricted: bool, enabled: bool, expected: bool) -> None:
    spec = JobSpec(prompt="x", requester=Requester(age_restricted=age_restricted))
    assert safety.needed(_entry(nsfw), spec, enabled=enabled) is expected
    # A job without a requester (the CLI) is treated as a non-restricted channel.
    if nsfw == "filter" and enabled:
        assert safety.needed(_entry(nsfw), JobSpec(prompt="x"), enabled=True) is True


# -- honesty: nothing to screen with means age-restricted channels only; no previews of what will be screened --


def test_a_model_nothing_screens_draws_for_discord_only_in_age_restricted_channels(
    conn, family_settings, family_ctx, redis_url, data_dir, family_registry
) -> None:
    from tests.helpers import context_with

    # The same weights with checkers turned off: the `filter` promise cannot be kept.
    off = context_with(family_ctx, redis_url, data_dir, registry_file=family_registry, safety_checker=False)
    with pytest.raises(queue.JobFailed) as refused:
        run(conn, family_settings, off, requester=Requester(guild_id=1, user_id=2))
    assert "has no safety checker here, so it draws only in age-restricted channels" in refused.value.error
    assert run(conn, family_settings, off, requester=Requester(guild_id=1, user_id=2, age_restricted=True)).seeds
    assert run(conn, family_settings, off).seeds  # the owner's own `imagine generate`: no server, no promise
    # The bot learns it from what workers advertise, and refuses up front.
    entry = family_ctx.registry.get("sd15-filtered")
    assert safety.age_restricted_only(entry, data_dir, enabled=False)
    assert not safety.age_restricted_only(family_ctx.registry.get("sd15"), data_dir, enabled=False)  # "allow"
    assert safety.age_restricted_only(family_ctx.registry.get("sdxl"), data_dir, enabled=True)  # no checker


def test_the_bot_refuses_an_unscreened_model_outside_age_restricted_channels(family_settings) -> None:
    from imagine import admission, limits
    from imagine.contract import ModelDefaults, ModelInfo

    defaults = ModelDefaults(width=32, height=32, steps=2, guidance=4.0, sampler="euler")
    info = ModelInfo(name="raw", defaults=defaults, age_restricted_only=True)
    rules = admission.Rules(limits.merge({}, family_settings), False, (), frozenset(), frozenset(), {"raw": info})
    spec = JobSpec(prompt="x", model="raw", requester=Requester(guild_id=1, channel_id=2, user_id=3))
    with pytest.raises(admission.Refused) as refused:
        admission.check(spec, rules)
    assert refused.value.limit == "nsfw" and "age-restricted channels" in refused.value.message
    ok = spec.model_copy(update={"requester": Requester(guild_id=1, channel_id=2, user_id=3, age_restricted=True)})
    admission.check(ok, rules)


def test_screened_jobs_show_no_previews(conn, family_settings, family_ctx) -> None:
    from tests.helpers import events_of

    def previews(**fields: Any) -> int:
        spec = JobSpec(prompt="a person", seed=2, model="sd15-filtered", steps=4, **fields)
        job = queue.enqueue(conn, spec, family_settings)
        run_burst(family_ctx)
        queue.wait(conn, job.id, timeout=30)
        return sum(1 for e in events_of(conn, job.id) if getattr(e, "preview_png", None))

    assert previews(requester=Requester(guild_id=1, user_id=2)) == 0  # screened: the preview would be unscreened
    assert previews(requester=Requester(guild_id=1, user_id=2, age_restricted=True)) >= 1


def test_every_frame_of_a_clip_is_screened_and_a_flagged_clip_is_not_shown(conn, family_settings, family_ctx) -> None:
    clip, _ = family_ctx.pipelines.get(family_ctx.registry.get("text-to-video-sd"))
    images, _ = family_ctx.pipelines.get(family_ctx.registry.get("sd15-filtered"))
    seen: list[int] = []
    checker = images.checker
    assert checker is not None

    class Counting(safety.Checker):
        def flags(self, pictures: list[Image.Image]) -> list[bool]:
            seen.append(len(pictures))
            return [i == len(pictures) - 1 for i in range(len(pictures))]  # only the last frame

    clip.checker = Counting(checker.model, checker.feature_extractor)
    try:
        spec = JobSpec(
            prompt="a person", seed=2, model="text-to-video-sd", kind="clip", requester=Requester(guild_id=1)
        )
        job = queue.enqueue(conn, spec, family_settings)
        run_burst(family_ctx)
        with pytest.raises(queue.JobFailed) as refused:
            queue.wait(conn, job.id, timeout=60)
    finally:
        clip.checker = None
    assert "flagged this clip, so it is not shown" in refused.value.error
    assert seen == [4]  # all four frames, not the poster alone


def test_a_result_says_which_images_were_hidden() -> None:
    from worker.delivery import hidden_note

    assert hidden_note([]) == ""
    assert hidden_note([1]) == "\n-# 🛡️ image 2 hidden by the safety checker"
    assert hidden_note([0, 3]) == "\n-# 🛡️ images 1, 4 hidden by the safety checker"
