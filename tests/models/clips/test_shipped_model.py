"""The committed clip weights do what they are asked: held-out prompts, fixed seeds, loaded the way the worker loads
them, read back frame by frame (`models.clips.motion`)."""

from __future__ import annotations

from pathlib import Path

import torch

from models import loader, registry
from models.clips.captions import canonical
from models.clips.heldout import heldout_scenes
from models.clips.motion import read_clip


def test_the_shipped_clip_model_moves_the_asked_shape_the_asked_way() -> None:
    entry = registry.load().get("clips")
    assert (entry.width, entry.height, entry.frames) == (64, 64, 8)
    pipe = loader.load_pipeline(entry, data_dir=Path("."), device=torch.device("cpu"), dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    # One held-out scene of three motions the evaluator scores 100% (the card has all 72): a move, a bounce, a growth.
    scenes = [next(s for s in heldout_scenes() if s.motion == m) for m in ("left", "bounce", "grow")]
    generators = [torch.Generator().manual_seed(i) for i in range(len(scenes))]
    clips = pipe(
        [canonical(s) for s in scenes],
        num_frames=entry.frames,
        num_inference_steps=entry.steps,
        guidance_scale=entry.guidance,
        generator=generators,
        output_type="pil",
    ).frames
    assert [len(c) for c in clips] == [8, 8, 8] and clips[0][0].size == (64, 64)
    for scene, clip in zip(scenes, clips, strict=True):
        assert read_clip(list(clip)).matches(scene) == dict.fromkeys(("color", "shape", "background", "motion"), True)
