"""models/clips/evaluate.py and card.py: the evaluator runs a real video pipeline end to end, the card reads it."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from models.clips import card, evaluate, tiny


def test_evaluate_writes_scores_and_a_strip_and_the_card_reads_them(tmp_path: Path) -> None:
    folder = tiny.ensure(tmp_path / "tiny-clips")
    evaluate.main([str(folder), "--limit", "9", "--steps", "2", "--frames", "4", "--threads", "1", "--write"])
    results = json.loads((folder / "evaluation.json").read_text())
    assert results["prompts"] == 9 and results["frames"] == 4
    scores = results["heldout"]
    assert set(scores["per_motion"]) == set(evaluate.MOTIONS)
    assert all(0 <= scores[k] <= 100 for k in ("color", "shape", "background", "motion", "all"))
    with Image.open(folder / "samples.png") as strip:
        assert strip.size == (4 * 32 * 3, len(results["strip"]) * 32 * 3)

    training = {"steps": 10, "clips": 80, "frames": 8, "train_seconds": 600, "batch": 8, "lr": 5e-4,
                "bf16_autocast": True, "threads": 1, "seed": 0, "init": None}  # fmt: skip
    (folder / "training.json").write_text(json.dumps(training))
    card.main([str(folder)])
    text = (folder / "README.md").read_text()
    assert "TextToVideoSDPipeline" in text and "does not yet meet" in text and "![samples](samples.png)" in text
