"""A training-only probe that keeps the text encoder saying what the caption says.

The text encoder learns only from what the UNet asks of it. Early on the UNet used colour and size but not place,
so nothing asked the encoder to tell "right", "top", "bottom" and "center" apart, and it stopped doing so: at step
4,058 their states (and every padding state) had a cosine similarity of 0.98-1.0 with each other, so no later
layer could ever learn position from them. A small linear head per attribute reads the mean token state and
names the caption's colour, shape, size, position and background ("none" where the caption leaves it out); its
cross-entropy joins the diffusion loss, so the encoder keeps every attribute apart from the first step. The head
is not part of the exported pipeline.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .world import BACKGROUNDS, COLORS, POSITIONS, SHAPES, SIZES

CLASSES: dict[str, tuple[str, ...]] = {
    "color": tuple(COLORS),
    "shape": SHAPES,
    "size": tuple(SIZES),
    "position": tuple(POSITIONS),
    "background": tuple(BACKGROUNDS),
}
"""Each attribute's values; index len(values) means "not named"."""

IGNORE = -100
"""Label of an empty prompt (caption dropout): nothing to name, no loss."""


class AttributeProbe(nn.Module):
    """One linear classifier per attribute over the mean of the text encoder's token states; `classes` names the
    attributes and their values (the image model's by default; the clip model adds motion)."""

    def __init__(self, text_width: int, classes: dict[str, tuple[str, ...]] | None = None) -> None:
        super().__init__()
        self.classes = CLASSES if classes is None else classes
        self.heads = nn.ModuleDict(
            {name: nn.Linear(text_width, len(values) + 1) for name, values in self.classes.items()}
        )

    def loss(self, text: torch.Tensor, labels: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean cross-entropy over the attributes; `labels` from `encode_labels`."""
        pooled = text.float().mean(dim=1)
        losses = [F.cross_entropy(head(pooled), labels[name], ignore_index=IGNORE) for name, head in self.heads.items()]
        return torch.stack(losses).mean()


def encode_labels(
    named: list[dict[str, str | None] | None], classes: dict[str, tuple[str, ...]] | None = None
) -> dict[str, torch.Tensor]:
    """Per attribute, the class index of each caption (None for an empty prompt)."""
    out = {}
    for name, values in (CLASSES if classes is None else classes).items():
        out[name] = torch.tensor(
            [IGNORE if n is None else len(values) if n[name] is None else values.index(n[name]) for n in named]
        )
    return out
