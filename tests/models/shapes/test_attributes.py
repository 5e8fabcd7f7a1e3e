"""The text probe's labels say exactly what each caption names, and its loss teaches the encoder to tell them apart."""

from __future__ import annotations

import random

import torch

from models.shapes import architecture
from models.shapes.attributes import CLASSES, IGNORE, AttributeProbe, encode_labels
from models.shapes.captions import COLOR_WORDS, POSITION_WORDS, SIZE_WORDS, described
from models.shapes.world import random_scene


def test_described_names_what_the_caption_says_and_nothing_it_left_out() -> None:
    rng = random.Random(3)
    for _ in range(300):
        scene = random_scene(rng)
        text, named = described(scene, rng, drop=0.5)
        words = f" {text.replace(',', ' ')} "
        assert named["color"] == scene.color and named["shape"] == scene.shape
        has_size = any(f" {w} " in words for w in SIZE_WORDS[scene.size])
        assert (named["size"] is not None) == has_size
        has_position = any(f" {p} " in words for p in POSITION_WORDS[scene.position])
        assert (named["position"] is not None) == has_position
        has_background = any(f" {w} " in words for w in COLOR_WORDS[scene.background])
        assert (named["background"] is not None) == has_background


def test_labels_mark_left_out_attributes_and_empty_prompts() -> None:
    named = {"color": "red", "shape": "star", "size": None, "position": "top left", "background": "blue"}
    labels = encode_labels([named, None])
    assert labels["color"].tolist() == [CLASSES["color"].index("red"), IGNORE]
    assert labels["size"][0] == len(CLASSES["size"])  # "not named"
    assert labels["position"][0] == CLASSES["position"].index("top left")


def test_the_probe_loss_pulls_position_words_apart_in_the_encoder() -> None:
    torch.manual_seed(0)
    tokenizer = architecture.make_tokenizer()
    encoder = architecture.make_text_encoder(len(tokenizer))
    probe = AttributeProbe(architecture.TEXT_WIDTH)
    rng = random.Random(0)
    batch = [described(random_scene(rng), rng) for _ in range(64)]
    ids = tokenizer([text for text, _ in batch], padding="max_length", max_length=20, return_tensors="pt").input_ids
    labels = encode_labels([named for _, named in batch])
    opt = torch.optim.AdamW([*encoder.parameters(), *probe.parameters()], lr=3e-3)
    first = probe.loss(encoder(ids)[0], labels).item()
    for _ in range(30):
        loss = probe.loss(encoder(ids)[0], labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first
