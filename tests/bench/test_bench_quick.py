"""`python -m bench --quick` end to end on the tiny model: every section runs and reports, batched images equal
their unbatched runs, every burst interaction is answered. (No timing is asserted: this machine is shared.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers import ROOT
from worker import speed

pytestmark = pytest.mark.slow


def test_the_quick_bench_runs_every_section(tmp_path: Path) -> None:
    out, chart = tmp_path / "bench.json", tmp_path / "bench.png"
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGINE_") and k != "REDIS_URL"}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--model", "tiny", "--out", str(out), "--chart", str(chart)],
        cwd=ROOT,
        env={**env, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["model"] == "tiny" and report["threads"] == 1
    assert report["overhead"]["ratio"] > 0 and len(report["overhead"]["ratio_per_round"]) == 1
    curve = report["batching"]["curve"]
    assert [c["batch_max"] for c in curve] == [1, 2, 4, 8]
    assert all(c["max_pixel_diff"] <= 2 for c in curve), curve
    ran = {r["setting"] for r in report["sampler"]["rows"]}
    # What the worker uses on this CPU (channels-last alone without bf16 units) beside float32.
    assert ran == ({"float32", "bf16 + channels-last"} if speed.bf16_supported() else {"float32", "channels-last"})
    assert report["sampler"]["skipped_no_bf16_units"] == []
    assert all(v > 0 for v in report["sampler"]["unet_flops_per_call"].values())
    burst = report["frontend"]["burst"]
    assert burst["interactions"] == 10 and burst["first_response_ms"]["p50"] > 0
    assert report["frontend"]["queue"]["jobs"] == 5
    scale = report["fairscale"]
    assert [r["jobs"] for r in scale["new"]] == [100, 1_000, 10_000] and [r["jobs"] for r in scale["old"]] == [100]
    assert all(r[op]["median_ms"] > 0 for r in scale["new"] for op in ("enqueue", "pop", "cancel"))
    assert "6. fair queue at scale" in done.stdout
    for text in ("1 worker overhead", "2 batching", "3 sampler", "4 front end burst", "5 queue overhead", "machine"):
        assert text in done.stdout
    with Image.open(chart) as picture:
        assert picture.format == "PNG"
