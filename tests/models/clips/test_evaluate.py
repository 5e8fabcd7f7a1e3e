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

    log = tmp_path / "train.log"
    log.write_text("2026-12-01 22:00:00,000 started\rvae 10%|\r2026-12-01 22:05:00,000 done at step 10\n")
    card.main([str(folder), "--cpu-run", str(folder), "--log", str(log)])
    recorded = json.loads((folder / "cpu-run.json").read_text())
    assert recorded["wall_minutes"] == 5.0 and "strip" not in recorded["evaluation"]
    assert recorded["training"]["steps"] == 10
    text = (folder / "README.md").read_text()
    assert "## The recipe on a CPU" in text and "5 minutes from the first line of its log" in text
    assert recorded["samples"] == card.CPU_SAMPLES and (folder / card.CPU_SAMPLES).is_file()  # the run's own strip
    assert f"]({card.CPU_SAMPLES})" in text
    card.main([str(folder)])  # rendered again later, the recorded run stays on the card
    assert "## The recipe on a CPU" in (folder / "README.md").read_text()

    # A CPU run with the layout warm-up, beside shipped weights trained before the recipe had it: the card says both.
    recorded["training"]["layout_warmup"] = {"steps": 600, "seconds": 362}
    (folder / "cpu-run.json").write_text(json.dumps(recorded))
    card.main([str(folder)])
    text = (folder / "README.md").read_text()
    assert "the layout warm-up (600 steps, 6.0 minutes) and 10 UNet steps" in text
    assert "before the recipe had its layout warm-up" in text and "so they stay the shipped model" in text
