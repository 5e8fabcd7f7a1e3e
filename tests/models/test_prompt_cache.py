"""models/prompt_cache.py: a prompt's layout is painted once per sampling call, and never reused when it may differ."""

from __future__ import annotations

import torch

from models.clips.unet import ClipLayout
from models.shapes.unet import TextLayout

WIDTH = 32


def counting(layout: torch.nn.Module) -> list[int]:
    calls: list[int] = []
    layout.mlp[1].register_forward_hook(lambda *_: calls.append(1))
    return calls


def paint(layout: torch.nn.Module, text: torch.Tensor) -> torch.Tensor:
    return layout(text, 8, 8) if isinstance(layout, TextLayout) else layout(text, 4, 8, 8)


def test_the_same_prompt_is_painted_once_and_the_result_is_the_same() -> None:
    for layout in (TextLayout(WIDTH).eval(), ClipLayout(WIDTH).eval()):
        calls = counting(layout)
        text = torch.randn(2, 5, WIDTH)
        with torch.no_grad():
            first = paint(layout, text)
            again = [paint(layout, text) for _ in range(3)]
            fresh = layout.paint(text, 8, 8) if isinstance(layout, TextLayout) else layout.paint(text, 4, 8, 8)
        assert len(calls) == 2  # the three repeats reused the first; `paint` itself always computes
        assert all(torch.equal(first, a) for a in again) and torch.equal(first, fresh)


def test_a_new_or_changed_prompt_new_weights_or_a_new_size_are_painted_again() -> None:
    layout = TextLayout(WIDTH).eval()
    calls = counting(layout)
    text = torch.randn(1, 5, WIDTH)
    with torch.no_grad():
        before = layout(text, 8, 8)
        layout(text.clone(), 8, 8)  # equal values, another tensor
        text.mul_(2)  # changed in place
        changed = layout(text, 8, 8)
        layout.mlp[1].weight.add_(1.0)  # weights changed in place
        layout(text, 8, 8)
        layout(text, 16, 16)
    assert len(calls) == 5 and not torch.equal(before, changed)


def test_nothing_is_kept_while_training_or_under_inference_mode() -> None:
    layout = TextLayout(WIDTH)
    calls = counting(layout)
    text = torch.randn(1, 5, WIDTH)
    layout(text, 8, 8).sum().backward()
    layout(text, 8, 8)
    layout.eval()
    with torch.inference_mode():
        made_here = torch.randn(1, 5, WIDTH)  # an inference tensor: no version counter to tell a change by
        layout(made_here, 8, 8)
        layout(made_here, 8, 8)
    assert len(calls) == 4
