"""The NSFW policy: a model's own diffusers safety checker, run per job where the policy says so.

Families that ship one (Stable Diffusion 1.x/2.x) have it detached from the pipeline when it loads, so the
pipeline never runs it by itself; the worker runs it on the finished images when the job needs it: always for an
entry with `nsfw = "always"`, outside age-restricted channels for the default `"filter"`, never for `"allow"`.
Flagged images are replaced by black ones (as diffusers does) and their indexes reported in the result; a clip
is screened frame by frame (every frame: a flagged frame can be anywhere, and the checker costs a small fraction
of sampling the clip), and a clip with any flagged frame is not shown at all: its job fails saying why.

Honesty: a model with nothing to screen it (no checker in its family or weights, or checkers turned off) cannot
keep the `filter` promise, so it draws for Discord only in age-restricted channels (`unscreened_refusal`; the bot
refuses the same requests up front from `advertised`, and `imagine models check` says so). Previews are off for
jobs whose images will be screened: a preview is the picture before the checker saw it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from imagine.contract import JobSpec
from models import check as model_check
from models.registry import ModelEntry

log = logging.getLogger(__name__)


@dataclass
class Checker:
    """A model's safety checker and the image processor that feeds it."""

    model: Any
    feature_extractor: Any

    def flags(self, pictures: list[Image.Image]) -> list[bool]:
        """Which of `pictures` the checker flags."""
        param = next(self.model.parameters())
        pixels = self.feature_extractor(pictures, return_tensors="pt").pixel_values.to(param.device, param.dtype)
        with torch.no_grad():
            _, flagged = self.model(clip_input=pixels, images=[torch.zeros(1) for _ in pictures])
        return [bool(flag) for flag in flagged]


def detach(pipe: Any) -> Checker | None:
    """Take the safety checker out of `pipe` (it no longer runs it) and return it, or None when it has none."""
    model = getattr(pipe, "safety_checker", None)
    extractor = getattr(pipe, "feature_extractor", None)
    if model is None:
        return None
    pipe.safety_checker = None
    if extractor is None:
        log.warning("%s has a safety checker but no feature extractor: it cannot run", type(pipe).__name__)
        return None
    return Checker(model, extractor)


def needed(entry: ModelEntry, spec: JobSpec, *, enabled: bool = True) -> bool:
    """Whether this job's images go through the checker (see the module docstring)."""
    if not enabled or entry.nsfw == "allow":
        return False
    if entry.nsfw == "always":
        return True
    return not (spec.requester is not None and spec.requester.age_restricted)


def screen(checker: Checker | None, pictures: list[Image.Image]) -> tuple[list[Image.Image], list[int]]:
    """`pictures` with the flagged ones blacked out, and the flagged indexes."""
    if checker is None or not pictures:
        return pictures, []
    flagged = [i for i, flag in enumerate(checker.flags(pictures)) if flag]
    if flagged:
        log.info("safety checker hid %d of %d images", len(flagged), len(pictures))
    shown = [Image.new("RGB", p.size) if i in flagged else p for i, p in enumerate(pictures)]
    return shown, flagged


def expects_checker(entry: ModelEntry, data_dir: Any) -> bool:
    """Whether `entry`'s pipeline will come with a safety checker, judged before loading it (for the bot)."""
    family = entry.family_info
    if entry.source == "tiny" or family is None or not family.safety_checker:
        return False  # the tiny pipeline has none; "auto" is unknown until loaded, so counted as none
    if entry.source in ("local", "single_file"):
        return model_check.has_safety_checker(entry, data_dir)
    return True  # a hub repository of a family that ships one


def age_restricted_only(entry: ModelEntry, data_dir: Any, *, enabled: bool) -> bool:
    """A model the bot lets draw only in age-restricted channels: its policy screens, and nothing would."""
    return entry.nsfw != "allow" and not (enabled and expects_checker(entry, data_dir))


def unscreened_refusal(entry: ModelEntry, spec: JobSpec, checker: Checker | None, *, enabled: bool) -> str | None:
    """Why a Discord job must not run: its policy wants it screened and nothing can (None: it may run).

    Jobs without a server (the owner's `imagine generate`) are the owner's own business and always run.
    """
    r = spec.requester
    if r is None or r.guild_id is None or entry.nsfw == "allow" or (enabled and checker is not None):
        return None
    if entry.nsfw == "filter" and r.age_restricted:
        return None
    return f"the model `{entry.name}` has no safety checker here, so it draws only in age-restricted channels."
