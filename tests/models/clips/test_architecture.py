"""models/clips/architecture.py: the image model's weights carry over into the clip model, which starts as it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from models.clips import architecture, train, warmup
from models.clips.unet import LAYOUT_CHANNELS
from models.shapes import architecture as image


def test_the_image_unet_fills_the_clip_unets_spatial_layers() -> None:
    torch.manual_seed(0)
    source = image.make_unet()
    clip = architecture.make_unet()
    left = architecture.inflate(clip, source.state_dict())
    fresh = ("layout.frames", "layout.motion.weight")  # the layout's time: frame codes and motion terms
    assert left and all("temp_" in k or k.startswith("transformer_in.") for k in left if k not in fresh)
    projection = clip.mid_block.attentions[0].proj_in.weight
    assert torch.equal(projection, source.mid_block.attentions[0].proj_in.weight.reshape(projection.shape))
    assert torch.equal(clip.add_embedding.proj.weight, source.add_embedding.proj.weight)  # the pooled prompt
    # The same number of heads as the image UNet, so attention computes what it computed there.
    heads = clip.down_blocks[-1].attentions[0].transformer_blocks[0].attn1.heads
    assert heads == source.down_blocks[-1].attentions[0].transformer_blocks[0].attn1.heads


def test_the_first_convolution_is_copied_by_input_group_and_t_starts_at_zero() -> None:
    torch.manual_seed(0)
    source = image.make_unet()
    clip = architecture.make_unet()
    architecture.inflate(clip, source.state_dict())
    old, new = source.conv_in.weight, clip.conv_in.weight
    # image: latents 4, x y 2, layout 16; clip: latents 4, x y t 3, layout 16
    assert old.shape[1] == 4 + 2 + LAYOUT_CHANNELS and new.shape[1] == 4 + 3 + LAYOUT_CHANNELS
    assert torch.equal(new[:, :6], old[:, :6])
    assert torch.equal(new[:, 6], torch.zeros_like(new[:, 6]))
    assert torch.equal(new[:, 7:], old[:, 6:])
    # Every frame starts with the image model's layout: the same MLP, and frame codes at zero.
    assert torch.equal(clip.layout.mlp[3].weight, source.layout.mlp[3].weight)
    assert not clip.layout.frames.any()


def test_an_image_model_without_coordinates_or_layout_leaves_those_channels_at_zero() -> None:
    torch.manual_seed(0)
    weights = {k: v for k, v in image.make_unet().state_dict().items() if not k.startswith("layout.")}
    weights["conv_in.weight"] = weights["conv_in.weight"][:, :4].clone()
    clip = architecture.make_unet()
    left = architecture.inflate(clip, weights)
    assert "layout.mlp.1.weight" in left
    assert torch.equal(clip.conv_in.weight[:, :4], weights["conv_in.weight"])
    assert not clip.conv_in.weight[:, 4:].any()
    with pytest.raises(ValueError, match="first convolution"):
        architecture.inflate(architecture.make_unet(), {**weights, "conv_in.weight": weights["conv_in.weight"][:, :3]})


def test_an_inflated_clip_unet_draws_every_frame_as_the_image_unet_does() -> None:
    """Temporal layers at the identity, t unused, the layout the same on every frame: nothing moves yet."""
    torch.manual_seed(0)
    source = image.make_unet().eval()
    clip = architecture.make_unet().eval()
    architecture.inflate(clip, source.state_dict())
    sample, text, t = (
        torch.randn(2, 4, 3, 32, 32),
        torch.randn(2, 77, architecture.TEXT_WIDTH),
        torch.tensor([999, 400]),
    )
    with torch.no_grad():
        video = clip(sample, t, encoder_hidden_states=text).sample
        frames = [source(sample[:, :, f], t, encoder_hidden_states=text).sample for f in range(3)]
    assert torch.allclose(video, torch.stack(frames, dim=2), atol=1e-4)


def test_the_text_encoder_keeps_its_words_and_learns_new_ones() -> None:
    tokenizer = architecture.make_tokenizer()
    old = image.make_text_encoder(len(image.make_tokenizer()))
    before = old.get_input_embeddings().weight.detach().clone()
    grown = architecture.grow_text_encoder(old, len(tokenizer), seed=0)
    table = grown.get_input_embeddings().weight
    assert table.shape[0] == len(tokenizer) > before.shape[0] and torch.equal(table[: before.shape[0]], before)
    with pytest.raises(ValueError):
        architecture.grow_text_encoder(grown, 3, seed=0)


@pytest.mark.slow
def test_training_starts_from_an_image_model_folder(tmp_path: Path) -> None:
    torch.manual_seed(0)
    folder = tmp_path / "image"
    pipe = image.assemble(image.make_vae(), image.make_text_encoder(len(image.make_tokenizer())), image.make_unet())
    image.save_folder(pipe, folder)
    (folder / "training.json").write_text('{"steps": 7}')
    out = tmp_path / "out"
    args = ["--init", str(folder), "--batch", "1", "--frames", "2", "--threads", "1", "--size", "32",
            "--layout-steps", "2", "--state", str(tmp_path / "state"), "--out", str(out)]  # fmt: skip
    train.main([*args, "--steps", "1"])
    meta = json.loads((out / "training.json").read_text())
    assert meta["init"] == str(folder) and meta["init_steps"] == 7 and len(meta["init_digest"]) == 16
    # The layout warm-up ran first, once: its report travels with the weights, and a resumed run keeps it as it was.
    assert meta["layout_warmup"]["steps"] == 2
    kept = tmp_path / "state" / warmup.FOLDER
    stamp = (kept / warmup.REPORT).stat().st_mtime_ns
    train.main([*args, "--steps", "2"])
    assert json.loads((out / "training.json").read_text())["layout_warmup"] == meta["layout_warmup"]
    assert (kept / warmup.REPORT).stat().st_mtime_ns == stamp
