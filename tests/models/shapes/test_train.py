"""The recipe runs, exports a stock diffusers folder, and resumes where it stopped."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import DiffusionPipeline, StableDiffusionPipeline
from safetensors.torch import load_file

from models.shapes import train
from tests.helpers import classes_loaded_in_a_fresh_process


def run(tmp_path: Path, steps: int) -> dict:
    train.main(
        [
            "--scenes",
            "96",
            "--vae-steps",
            "3",
            "--steps",
            str(steps),
            "--batch",
            "8",
            "--state",
            str(tmp_path / "state"),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    return json.loads((tmp_path / "out" / "training.json").read_text())


def test_train_exports_a_loadable_pipeline_and_resumes(tmp_path: Path) -> None:
    assert run(tmp_path, 2)["steps"] == 2
    vae_before = (tmp_path / "out" / "vae" / "diffusion_pytorch_model.safetensors").read_bytes()
    assert run(tmp_path, 4)["steps"] == 4  # resumed from the checkpoint, not restarted
    assert (tmp_path / "out" / "vae" / "diffusion_pytorch_model.safetensors").read_bytes() == vae_before

    pipe = DiffusionPipeline.from_pretrained(tmp_path / "out")
    assert isinstance(pipe, StableDiffusionPipeline)
    seen_steps: list[int] = []

    def on_step(pipe, step, timestep, kwargs):
        seen_steps.append(step)
        return kwargs

    image = pipe(
        "a red star", num_inference_steps=3, generator=torch.Generator().manual_seed(0), callback_on_step_end=on_step
    ).images[0]
    assert image.size == (32, 32) and seen_steps == [0, 1, 2]
    assert_loads_in_a_fresh_process(tmp_path / "out")


def assert_loads_in_a_fresh_process(folder: Path) -> None:
    assert classes_loaded_in_a_fresh_process(folder) == "StableDiffusionPipeline CoordUNet2DConditionModel"


def test_train_resumes_from_exported_weights_when_the_state_is_gone(tmp_path: Path) -> None:
    run(tmp_path, 2)
    for name in ("state.json", "state.safetensors"):
        (tmp_path / "state" / name).unlink()
    assert run(tmp_path, 3)["steps"] == 3


def test_reset_text_encoder_starts_the_encoder_afresh_and_keeps_the_unet(tmp_path: Path) -> None:
    run(tmp_path, 2)
    before = saved(tmp_path / "state")
    train.main(
        [
            *("--scenes", "96", "--vae-steps", "3", "--steps", "2", "--batch", "8", "--reset-text-encoder"),
            *("--state", str(tmp_path / "state"), "--out", str(tmp_path / "out")),
        ]
    )
    after = saved(tmp_path / "state")
    assert after["step"] == 2 and after["ema_start"] == 2
    assert after["history"] == [{"step": 2, "event": "text encoder started afresh"}]
    unet = [key for key in before["tensors"] if key.startswith("unet.")]
    assert unet and all(torch.equal(before["tensors"][k], after["tensors"][k]) for k in unet)
    embedding = "text_encoder.embeddings.token_embedding.weight"
    assert not torch.equal(before["tensors"][embedding], after["tensors"][embedding])
    assert json.loads((tmp_path / "out" / "training.json").read_text())["history"] == after["history"]


def saved(folder: Path) -> dict:
    """A checkpoint as written: its JSON fields, and its tensors under "tensors"."""
    return {**json.loads((folder / "state.json").read_text()), "tensors": load_file(folder / "state.safetensors")}


def test_checkpoints_are_safetensors_and_json_never_pickle(tmp_path: Path) -> None:
    run(tmp_path, 2)
    files = [p for p in (tmp_path / "state").rglob("*") if p.is_file()]
    assert {"state.json", "state.safetensors"} <= {p.name for p in files}
    assert {p.suffix for p in files} == {".json", ".safetensors"}
