"""models/clips/architecture.py: the image model's weights carry over into the clip model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models.clips import architecture, train
from models.shapes import architecture as image


def test_the_image_unet_fills_the_clip_unets_spatial_layers() -> None:
    torch.manual_seed(0)
    source = image.make_unet()
    clip = architecture.make_unet()
    left = architecture.inflate(clip, source.state_dict())
    assert left and all("temp_" in k or k.startswith("transformer_in.") for k in left)
    # The image UNet's first convolution also reads two coordinate channels: their weights are dropped.
    assert source.conv_in.weight.shape[1] == clip.conv_in.weight.shape[1] + 2
    assert torch.equal(clip.conv_in.weight, source.conv_in.weight[:, :4])
    projection = clip.mid_block.attentions[0].proj_in.weight
    assert torch.equal(projection, source.mid_block.attentions[0].proj_in.weight.reshape(projection.shape))
    # The same number of heads as the image UNet, so attention computes what it computed there.
    heads = clip.down_blocks[-1].attentions[0].transformer_blocks[0].attn1.heads
    assert heads == source.down_blocks[-1].attentions[0].transformer_blocks[0].attn1.heads


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
    train.main(["--init", str(folder), "--steps", "1", "--batch", "1", "--frames", "2", "--threads", "1",
                "--state", str(tmp_path / "state"), "--out", str(out)])  # fmt: skip
    meta = __import__("json").loads((out / "training.json").read_text())
    assert meta["init"] == str(folder) and meta["init_steps"] == 7 and len(meta["init_digest"]) == 16
