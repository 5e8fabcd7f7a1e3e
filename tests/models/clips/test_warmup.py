"""models/clips/warmup.py: the layout learns each frame's place through the frozen image UNet, and only it moves."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from models.clips import train, warmup
from models.clips.heldout import heldout_scenes
from models.clips.unet import LAYOUT_FRAMES, MOTION_TERMS, ClipLayout
from models.clips.world import DIRECTIONS, render_clip
from models.shapes import architecture as image
from models.shapes.architecture import TEXT_WIDTH


def test_the_frame_layout_hands_each_frame_its_own_maps() -> None:
    torch.manual_seed(0)
    layout = ClipLayout(TEXT_WIDTH)
    with torch.no_grad():
        layout.frames.normal_()
        layout.motion.weight.normal_(std=0.01)
    text = torch.randn(2, 5, TEXT_WIDTH)
    frames = layout(text, 3, 8, 8)  # (clips, channels, frames, h, w)
    per_frame = warmup.FrameLayout(layout, 3)(text.repeat_interleave(3, dim=0), 8, 8)
    assert per_frame.shape == (6, frames.shape[1], 8, 8)
    for clip in range(2):
        for frame in range(3):
            assert torch.allclose(per_frame[clip * 3 + frame], frames[clip, :, frame], atol=1e-6)


def test_the_motion_terms_paint_a_velocity_that_grows_with_the_frames_time() -> None:
    """With the curvature rows at zero, a frame's maps differ from the first frame's by its time (-1 to 1) times one
    velocity map: the first-order path from "moving left" to a place that changes."""
    torch.manual_seed(0)
    layout = ClipLayout(TEXT_WIDTH)
    maps = layout.motion.out_features // MOTION_TERMS
    with torch.no_grad():
        layout.motion.weight[:maps].normal_(std=0.01)
    grid = layout.grid(torch.randn(1, 4, TEXT_WIDTH)).flatten(3)  # (1, channels, frames, cells)
    step = grid[:, :, 1] - grid[:, :, 0]
    assert step.abs().max() > 0
    for k in range(LAYOUT_FRAMES):
        assert torch.allclose(grid[:, :, k] - grid[:, :, 0], k * step, atol=1e-5)


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("image")
    pipe = image.assemble(image.make_vae(), image.make_text_encoder(len(image.make_tokenizer())), image.make_unet())
    image.save_folder(pipe, folder)
    return folder


def test_the_warm_up_trains_the_layout_and_text_alone_and_is_kept(image_folder: Path, tmp_path: Path) -> None:
    opts = train.parse(["--init", str(image_folder), "--batch", "1", "--frames", "2", "--threads", "1", "--size", "32",
                        "--state", str(tmp_path / "state"), "--out", str(tmp_path / "out")])  # fmt: skip
    trainer = train.Trainer(opts)
    before = {k: v.clone() for k, v in trainer.unet.state_dict().items()}
    text_before = {k: v.clone() for k, v in trainer.text_encoder.state_dict().items()}
    folder = tmp_path / "state" / warmup.FOLDER
    report = warmup.run(trainer, image_folder, 3, 1e-3, folder)
    after = trainer.unet.state_dict()
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    assert changed and all(k.startswith("layout.") for k in changed)
    assert "layout.motion.weight" in changed and "layout.frames" in changed
    assert any(not torch.equal(v, text_before[k]) for k, v in trainer.text_encoder.state_dict().items())
    # The EMA copies start from what the warm-up left, so the first export already has it.
    ema = trainer.ema_unet.layout.state_dict()
    assert all(torch.equal(v, ema[k]) for k, v in trainer.unet.layout.state_dict().items())
    assert report["steps"] == 3 and json.loads((folder / warmup.REPORT).read_text()) == report
    assert report["moves_at_pure_noise"]["of"] == 32 and 0 <= report["moves_at_pure_noise"]["right"] <= 32

    again = train.Trainer(opts)  # a resumed run reads what the stage kept instead of training it again
    assert warmup.run(again, image_folder, 3, 1e-3, folder) == report
    assert all(torch.equal(v, after[k]) for k, v in again.unet.state_dict().items() if k.startswith("layout."))
    assert all(torch.equal(v, trainer.text_encoder.state_dict()[k]) for k, v in again.text_encoder.state_dict().items())


def test_the_stages_measure_reads_real_moves_right_and_reversed_ones_wrong() -> None:
    scenes = [s for s in heldout_scenes() if s.motion in DIRECTIONS]
    rng = random.Random(0)
    clips = [render_clip(scene, 8, rng) for scene in scenes]
    assert len(scenes) == 32 and warmup.moves_read_right(scenes, clips) == 32
    assert warmup.moves_read_right(scenes, [clip[::-1] for clip in clips]) == 0
