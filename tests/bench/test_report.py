"""bench/report.py and bench/common.py: the table marks each target met or missed, JSON and PNG are written, and
the statistics are right. (Correctness only: no timings are asserted anywhere in these tests.)"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from PIL import Image

from bench import common, report


def sample(ratio: float = 0.97, speedup8: float = 1.8, first_max: float = 120.0) -> dict[str, Any]:
    return {
        "model": "shapes",
        "threads": 1,
        "overhead": {
            "jobs_per_round": 4,
            "rounds": 3,
            "worker_jobs_per_s": 1.0,
            "direct_jobs_per_s": 1.03,
            "ratio": ratio,
            "ratio_per_round": [ratio, ratio, ratio],
            "shipped_jobs_per_s": 2.0,
            "plain_diffusers_jobs_per_s": 0.8,
            "shipped_vs_plain": 2.5,
            "shipped_vs_plain_per_round": [2.5],
        },
        "batching": {
            "waiting_jobs": 8,
            "rounds": 3,
            "curve": [
                {"batch_max": b, "jobs_per_s": s, "speedup": s, "max_pixel_diff": 0, "mean_pixel_diff": 0.0}
                for b, s in ((1, 1.0), (2, 1.3), (4, 1.6), (8, speedup8))
            ],
        },
        "sampler": {
            "steps": 20,
            "peak_fp32_flop_per_s": 1e11,
            "peak_bf16_flop_per_s": 8e11,
            "unet_flops_per_call": {"1": 1.07e9, "8": 8.5e9},
            "rows": [
                {
                    "setting": name,
                    "batch": b,
                    "seconds_per_image": t,
                    "unet_calls_per_s": 20 / t,
                    "achieved_flop_per_s": 1e10,
                    "share_of_fp32_peak": 0.1,
                    "share_of_bf16_peak": 0.0125,
                    "speedup_vs_float32": 1.0,
                }
                for name in ("float32", "bf16 + channels-last")
                for b, t in ((1, 0.8), (8, 0.4))
            ],
        },
        "frontend": {
            "burst": {
                "interactions": 100,
                "sent_within_s": 0.99,
                "first_response_ms": {"p50": 40.0, "p95": 90.0, "p99": 110.0, "max": first_max},
                "queue_position_ms": {"p50": 80.0, "p95": 150.0, "p99": 200.0, "max": 210.0},
                "over_3s": 0,
            },
            "queue": {
                "jobs": 200,
                "enqueue_to_start_ms": {"median": 5.0, "p95": 9.0},
                "end_to_posted_ms": {"median": 30.0, "p95": 60.0},
            },
        },
        "load": {"cpus": 2, "loadavg_1m_at_start": 3.1, "loadavg_1m_at_end": 3.4, "busy_processes_at_end": ["train"]},
    }


def marks(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        for section in ("1 worker overhead", "2 batching", "4 front end burst"):
            if line.startswith(section):
                found[section] = "MISSED" if "MISSED" in line else "ok" if " ok " in line else "?"
    return found


def test_the_table_says_which_targets_hold() -> None:
    good = report.table(sample())
    assert marks(good) == {"1 worker overhead": "ok", "2 batching": "ok", "4 front end burst": "ok"}
    bad = report.table(sample(ratio=0.9, speedup8=1.4, first_max=3200.0))
    assert marks(bad) == {"1 worker overhead": "MISSED", "2 batching": "MISSED", "4 front end burst": "MISSED"}
    # Every section and the machine's load have a row.
    for text in ("3 sampler", "5 queue overhead", "machine", "1.00 / 1.30 / 1.60 / 1.80", "train"):
        assert text in good


def test_a_partial_report_has_only_its_rows() -> None:
    partial = {k: v for k, v in sample().items() if k in ("batching", "load")}
    text = report.table(partial)
    assert "2 batching" in text and "1 worker overhead" not in text and "3 sampler" not in text


def test_json_and_chart_are_written(tmp_path: Path) -> None:
    data = sample()
    data["overhead"]["nan_is_null"] = math.nan
    report.write_json(data, tmp_path / "bench.json")
    assert json.loads((tmp_path / "bench.json").read_text())["batching"]["curve"][3]["speedup"] == 1.8
    report.write_chart(data, tmp_path / "bench.png")
    with Image.open(tmp_path / "bench.png") as chart:
        assert chart.format == "PNG" and chart.width > 600


def test_percentiles_interpolate_between_ranks() -> None:
    values = [float(v) for v in range(1, 101)]
    assert common.percentile(values, 0.5) == 50.5
    assert common.percentile(values, 0.99) == 99.01
    assert common.percentile([3.0], 0.99) == 3.0
    assert math.isnan(common.percentile([], 0.5))


def test_sides_alternate_in_order_then_reversed() -> None:
    calls: list[str] = []

    def side(name: str) -> float:
        calls.append(name)
        return float(len(calls))

    results = common.alternate(3, [lambda: side("a"), lambda: side("b")])
    assert calls == ["a", "b", "b", "a", "a", "b"]
    assert results == [[1.0, 4.0, 5.0], [2.0, 3.0, 6.0]]
