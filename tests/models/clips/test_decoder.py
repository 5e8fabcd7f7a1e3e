"""models/clips/decoder.py: the 64x64 VAE reads the image model's latents, and is trained once then kept."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from models.clips import decoder
from models.shapes import architecture as image


def test_frame_pairs_are_the_same_pose_at_both_sizes() -> None:
    small, large = decoder.frame_pairs(24, seed=3)
    assert small.shape == (24, 3, 32, 32) and large.shape == (24, 3, 64, 64)
    assert small.dtype == large.dtype == torch.uint8
    shrunk = F.avg_pool2d(large.float(), 2)
    assert (shrunk - small.float()).abs().mean() < 6  # the same picture (edges anti-alias a little differently)
    other = torch.roll(small, 8, dims=0).float()  # the same frame of the next clip
    assert (shrunk - other).abs().mean() > 20  # and not just any picture of the world


def test_the_vae_draws_twice_the_latent_side_and_keeps_the_image_vaes_scale() -> None:
    vae = decoder.make_decoder_vae(scaling_factor=1.7)
    assert vae.config.scaling_factor == 1.7 and 2 ** (len(vae.config.block_out_channels) - 1) == decoder.SCALE
    with torch.no_grad():
        out = vae.decode(torch.randn(2, image.LATENT_CHANNELS, 32, 32)).sample
        latent = vae.encode(torch.zeros(1, 3, 64, 64)).latent_dist.mean
    assert out.shape == (2, 3, 64, 64) and latent.shape == (1, image.LATENT_CHANNELS, 32, 32)


@pytest.fixture(scope="module")
def image_vae() -> torch.nn.Module:
    torch.manual_seed(0)
    return image.make_vae().eval().requires_grad_(False)


def test_training_reports_held_out_errors_and_ensure_keeps_the_result(
    tmp_path: Path, image_vae: torch.nn.Module, monkeypatch: pytest.MonkeyPatch
) -> None:
    vae, report = decoder.ensure(tmp_path / "vae-64", image_vae, steps=3, seed=0, device="cpu", batch=4)
    assert set(report) == {"psnr_decoded_64", "psnr_image_vae_upscaled", "latent_mse_encoder", "latent_spread"}
    assert (tmp_path / "vae-64" / decoder.REPORT).is_file()

    def no_training(*_: object, **__: object) -> None:
        raise AssertionError("trained again")

    monkeypatch.setattr(decoder, "train_decoder", no_training)
    again, same = decoder.ensure(tmp_path / "vae-64", image_vae, steps=3, seed=0, device="cpu", batch=4)
    assert same == report
    assert all(torch.equal(a, b) for a, b in zip(vae.state_dict().values(), again.state_dict().values(), strict=True))
