"""worker/encoding.py: parameters in the PNG, stable bytes, grids, upscaling and previews."""

from __future__ import annotations

import io

from PIL import Image

from worker import encoding


def _picture(colour: tuple[int, int, int] = (200, 30, 30), size: int = 32) -> Image.Image:
    return Image.new("RGB", (size, size), colour)


def test_parameters_survive_the_round_trip_even_in_unicode() -> None:
    for text in ("a red circle\nSteps: 20, Seed: 1", "一只猫 🐈\nSteps: 20"):
        assert encoding.read_parameters(encoding.encode_png(_picture(), text)) == text
    assert encoding.read_parameters(encoding.encode_png(_picture())) is None


def test_encoding_is_deterministic() -> None:
    assert encoding.encode_png(_picture(), "p") == encoding.encode_png(_picture(), "p")


def test_grid_layouts() -> None:
    four = encoding.grid([_picture((i * 60, 0, 0)) for i in range(4)])
    assert four.size == (64, 64) and four.getpixel((40, 40)) == (180, 0, 0)
    assert encoding.grid([_picture()] * 2).size == (64, 32)
    assert encoding.grid([_picture()] * 3).size == (96, 32)


def test_upscale_and_preview_sizes() -> None:
    assert encoding.upscale(_picture(), 4).size == (128, 128)
    assert encoding.upscale(_picture(), 1).size == (32, 32)
    with Image.open(io.BytesIO(encoding.preview(_picture(size=512), 128))) as small:
        assert small.size == (128, 128)
    with Image.open(io.BytesIO(encoding.preview(_picture(size=32), 128))) as grown:
        assert grown.size == (128, 128)
