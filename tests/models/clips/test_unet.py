"""models/clips/unet.py: the clip UNet knows which frame comes first, and loads like any diffusers component."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from diffusers import DiffusionPipeline, UNet3DConditionModel

from models.clips import architecture, tiny
from models.clips.unet import LAYOUT_FRAMES, ClipLayout, CoordUNet3DConditionModel, coordinates
from models.shapes.unet import TextLayout
from tests.helpers import classes_loaded_in_a_fresh_process

TEXT_WIDTH = 32
T_CHANNEL = 4 + 2
"""The t coordinate's input channel: after the 4 latent channels, x and y."""


def small(cls: type[UNet3DConditionModel] = CoordUNet3DConditionModel) -> UNet3DConditionModel:
    torch.manual_seed(0)
    return cls(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        block_out_channels=(16, 16),
        layers_per_block=1,
        down_block_types=("DownBlock3D", "CrossAttnDownBlock3D"),
        up_block_types=("CrossAttnUpBlock3D", "UpBlock3D"),
        cross_attention_dim=TEXT_WIDTH,
        attention_head_dim=8,
        norm_num_groups=8,
    ).eval()


def predict(unet: UNet3DConditionModel, sample: torch.Tensor) -> torch.Tensor:
    torch.manual_seed(1)
    text = torch.randn(sample.shape[0], 7, TEXT_WIDTH)
    with torch.no_grad():
        return unet(sample, torch.tensor(900), encoder_hidden_states=text).sample


def reverses_with_time(unet: UNet3DConditionModel) -> bool:
    """Whether the prediction for the clip played backwards is the prediction played backwards."""
    sample = torch.randn(2, 4, 5, 16, 16, generator=torch.Generator().manual_seed(2))
    forwards, backwards = predict(unet, sample), predict(unet, sample.flip(2))
    return torch.allclose(backwards, forwards.flip(2), atol=1e-5)


def test_a_stock_video_unet_cannot_tell_the_first_frame_from_the_last() -> None:
    """Its temporal attention treats frames as a set, its temporal convolutions start as the identity: a clip
    played backwards gets the same prediction played backwards, so "moving left" and "moving right" look alike."""
    assert reverses_with_time(small(UNet3DConditionModel))
    assert not reverses_with_time(small())


def test_the_layout_alone_tells_the_frames_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    unet = small()
    with torch.no_grad():
        unet.conv_in.weight[:, T_CHANNEL] = 0  # no t coordinate: the layout is all that knows the order
    assert reverses_with_time(unet)  # frame codes at zero: the same layout on every frame
    with torch.no_grad():
        unet.layout.frames.normal_()
    assert not reverses_with_time(unet)

    sample = torch.randn(1, 4, LAYOUT_FRAMES, 16, 16)
    before = predict(unet, sample)
    painted = unet.layout.forward
    monkeypatch.setattr(unet.layout, "forward", lambda *args: painted(*args).flip(2))
    assert not torch.allclose(predict(unet, sample), before, atol=1e-4)


def test_with_zero_frame_codes_every_frame_has_the_image_models_layout() -> None:
    torch.manual_seed(0)
    clip, picture = ClipLayout(TEXT_WIDTH), TextLayout(TEXT_WIDTH)
    picture.load_state_dict({k: v for k, v in clip.state_dict().items() if k.startswith("mlp.")})
    text = torch.randn(2, 7, TEXT_WIDTH)
    maps = clip(text, 3, 16, 16)
    assert maps.shape == (2, picture.mlp[3].out_features // 64, 3, 16, 16)
    for frame in range(3):
        assert torch.allclose(maps[:, :, frame], picture(text, 16, 16), atol=1e-6)


def test_the_layout_stretches_to_any_frame_count_with_its_ends_pinned() -> None:
    torch.manual_seed(0)
    layout = ClipLayout(TEXT_WIDTH)
    with torch.no_grad():
        layout.frames.normal_()
    text = torch.randn(1, 7, TEXT_WIDTH)
    grid = layout.grid(text)
    assert torch.allclose(layout(text, LAYOUT_FRAMES, 8, 8), grid, atol=1e-6)  # the grid as it is
    long = layout(text, 15, 8, 8)
    assert torch.allclose(long[:, :, 0], grid[:, :, 0], atol=1e-6)
    assert torch.allclose(long[:, :, -1], grid[:, :, -1], atol=1e-6)
    assert predict(small(), torch.randn(1, 4, 3, 16, 16)).shape == (1, 4, 3, 16, 16)


def test_coordinates_run_from_minus_one_to_one_along_x_y_and_time() -> None:
    grid = coordinates(torch.zeros(2, 4, 3, 5, 7))
    assert grid.shape == (2, 3, 3, 5, 7)
    x, y, t = grid[0]
    assert x[0, 0, 0] == y[0, 0, 0] == t[0, 0, 0] == -1.0
    assert x[0, 0, -1] == y[0, -1, 0] == t[-1, 0, 0] == 1.0
    assert max(x[:, :, 3].abs().max(), y[:, 2].abs().max(), t[1].abs().max()) < 1e-6  # the middles


def test_the_pipeline_saves_and_loads_with_this_unet(tmp_path: Path) -> None:
    folder = tiny.build(tmp_path / "tiny-clips")
    pipe = DiffusionPipeline.from_pretrained(folder)  # this module has imported models.clips.unet
    assert type(pipe.unet) is CoordUNet3DConditionModel
    made = architecture.make_unet((16, 16), head_dim=8, text_width=TEXT_WIDTH)
    assert pipe.unet.state_dict().keys() == made.state_dict().keys()
    pipe.set_progress_bar_config(disable=True)
    out = pipe("a red circle moving left", num_frames=3, num_inference_steps=2, output_type="np")
    assert out.frames.shape == (1, 3, 32, 32, 3)
    assert_loads_in_a_fresh_process(folder)


def assert_loads_in_a_fresh_process(folder: Path) -> None:
    assert classes_loaded_in_a_fresh_process(folder) == "TextToVideoSDPipeline CoordUNet3DConditionModel"
