"""models/clips/train.py at smoke scale: it runs, exports a stock video pipeline, and resumes exactly."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from diffusers import DiffusionPipeline
from safetensors.torch import load_file

from models.clips import architecture, train
from models.clips.unet import CoordUNet3DConditionModel
from models.clips.world import MOTIONS
from tests.models.clips.test_unet import assert_loads_in_a_fresh_process

TINY = ["--init", "none", "--channels", "16,16", "--head-dim", "8", "--vae-steps", "3", "--batch", "2",
        "--frames", "4", "--threads", "1", "--warmup", "2", "--size", "32"]  # fmt: skip


def run(tmp: Path, name: str, steps: int, *extra: str) -> Path:
    out = tmp / name / "out"
    train.main([*TINY, "--steps", str(steps), "--state", str(tmp / name / "state"), "--out", str(out), *extra])
    return out


def unet_weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(next((folder / "unet").glob("*.safetensors")))


def test_smoke_training_exports_a_video_pipeline_and_resumes_exactly(tmp_path: Path) -> None:
    straight = run(tmp_path, "straight", 4)
    meta = json.loads((straight / "training.json").read_text())
    assert meta["steps"] == 4 and meta["clips"] == 8 and meta["frames"] == 4 and meta["init"] is None
    assert meta["high_noise_share"] == 0.25 and meta["probe_weight"] == 0.1 and meta["size"] == 32
    assert json.loads((straight / "model_index.json").read_text())["_class_name"] == "TextToVideoSDPipeline"

    run(tmp_path, "split", 2)
    assert json.loads((tmp_path / "split" / "state" / "state.json").read_text())["step"] == 2
    split = run(tmp_path, "split", 4)  # resumes from the checkpoint: weights, EMA, optimizer, random streams
    a, b = unet_weights(straight), unet_weights(split)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    pipe = DiffusionPipeline.from_pretrained(straight)
    pipe.set_progress_bar_config(disable=True)
    out = pipe("a red circle moving right", num_frames=3, num_inference_steps=2, output_type="pil")
    assert type(pipe).__name__ == "TextToVideoSDPipeline" and len(out.frames[0]) == 3
    assert out.frames[0][0].size == (32, 32)
    assert type(pipe.unet) is CoordUNet3DConditionModel
    assert_loads_in_a_fresh_process(straight)


def test_training_resumes_from_exported_weights_when_the_state_is_gone(tmp_path: Path) -> None:
    first = unet_weights(run(tmp_path, "run", 2))
    for name in ("state.json", "state.safetensors"):
        (tmp_path / "run" / "state" / name).unlink()
    out = run(tmp_path, "run", 3)
    assert json.loads((out / "training.json").read_text())["steps"] == 3
    assert unet_weights(out).keys() == first.keys()


def test_a_share_of_timesteps_comes_from_the_noisiest_tenth() -> None:
    """`--high-noise-share`: the steps where only the words can say where things go are trained on, not skipped."""

    def draw(share: float) -> torch.Tensor:
        trainer = SimpleNamespace(
            noise=architecture.make_train_scheduler(),
            opts=SimpleNamespace(high_noise_share=share),
            gen=torch.Generator().manual_seed(0),
        )
        return train.Trainer.timesteps(trainer, 4000)  # type: ignore[arg-type]

    assert (draw(1.0) >= 900).all()
    uniform, mixed = (draw(0.0) >= 900).float().mean(), (draw(0.25) >= 900).float().mean()
    assert 0.08 < uniform < 0.12 and 0.28 < mixed < 0.37  # 10%, then 25% + 75% of 10%
    assert draw(0.25).min() < 100


def test_bench_prints_the_cost_per_step_and_saves_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    train.main([*TINY, "--bench", "2", "--state", str(tmp_path / "s"), "--out", str(tmp_path / "o")])
    printed = capsys.readouterr().out.splitlines()
    assert json.loads(printed[0])["threads"] == 1 and "s a step (batch 2 x 4 frames, 1 threads)" in printed[1]
    assert not (tmp_path / "o").exists() and not (tmp_path / "s" / "state.json").exists()


def test_size_64_exports_a_vae_that_draws_the_latents_at_twice_the_side(tmp_path: Path) -> None:
    out = run(tmp_path, "large", 1, "--size", "64", "--decoder-steps", "1")
    meta = json.loads((out / "training.json").read_text())
    assert meta["size"] == 64 and set(meta["decoder"]) >= {"psnr_decoded_64", "psnr_image_vae_upscaled"}
    pipe = DiffusionPipeline.from_pretrained(out)
    pipe.set_progress_bar_config(disable=True)
    frames = pipe("a red circle moving right", num_frames=2, num_inference_steps=1, output_type="pil").frames[0]
    assert frames[0].size == (64, 64) and pipe.unet.config.sample_size == 32


def test_the_text_probe_reads_motion_and_is_checkpointed(tmp_path: Path) -> None:
    """The probe's heads (motion among them) train with the text encoder and resume with it."""
    assert train.CLASSES["motion"] == MOTIONS
    run(tmp_path, "probe", 2)
    names = load_file(tmp_path / "probe" / "state" / "state.safetensors").keys()
    assert "probe.heads.motion.weight" in names and "probe.heads.color.weight" in names


def test_training_resumes_from_an_export_that_is_further_along_than_the_state(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Weights trained elsewhere arrive as an export: an older local state must not win and overwrite them."""
    out = run(tmp_path, "run", 2)
    meta = json.loads((out / "training.json").read_text())
    (out / "training.json").write_text(json.dumps({**meta, "steps": 5}))  # as if trained on to step 5 elsewhere
    with caplog.at_level(logging.INFO, logger="models.training"):
        run(tmp_path, "run", 6)
    assert "resumed from exported weights" in caplog.text and "at step 5" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="models.training"):
        run(tmp_path, "run", 7)  # now the state (step 6) is as far along as the export: it wins
    assert "resumed from exported weights" not in caplog.text and "at step 6" in caplog.text
    shipped = (tmp_path / "run" / "out" / "training.json").read_bytes()
    run(tmp_path, "run", 3)  # the goal is behind the weights: nothing to train, and the export keeps its record
    assert (tmp_path / "run" / "out" / "training.json").read_bytes() == shipped


def test_the_clip_count_adds_up_each_runs_batch_and_the_history_travels(tmp_path: Path) -> None:
    """A run resumed with another batch counts the clips it saw, and notes on earlier runs stay on the weights."""
    out = run(tmp_path, "run", 2)  # batch 2
    assert json.loads((out / "training.json").read_text())["clips"] == 4
    run(tmp_path, "run", 3, "--batch", "1")  # from the checkpoint
    meta = json.loads((out / "training.json").read_text())
    assert meta["clips"] == 5 and "history" not in meta
    note = {"steps": "0-3", "note": "trained elsewhere"}
    (out / "training.json").write_text(json.dumps({**meta, "history": [note]}))
    for name in ("state.json", "state.safetensors"):
        (tmp_path / "run" / "state" / name).unlink()
    run(tmp_path, "run", 4)  # from the export alone
    meta = json.loads((out / "training.json").read_text())
    assert meta["clips"] == 7 and meta["history"] == [note]
    run(tmp_path, "run", 5)  # and from the checkpoint that run wrote
    assert json.loads((out / "training.json").read_text())["history"] == [note]
