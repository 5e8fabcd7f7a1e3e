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
