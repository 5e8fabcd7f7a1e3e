"""The bench's outputs: one table of ratios and figures (printed), the same as JSON, and a PNG chart.

Each row names its target where the issue sets one and says whether this run met it.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Targets from the issue.
OVERHEAD_TARGET = 0.95
BATCH_TARGET = 1.5
FIRST_RESPONSE_LIMIT_MS = 3000.0


@dataclass
class Row:
    section: str
    measure: str
    value: str
    target: str = ""
    met: bool | None = None


def rows(report: dict[str, Any]) -> list[Row]:
    """The table's rows for whatever sections the report has."""
    out: list[Row] = []
    if "overhead" in report:
        o = report["overhead"]
        out.append(
            Row(
                "1 worker overhead",
                f"jobs/s through imagine ÷ direct loop, batching off, median of {len(o['ratio_per_round'])} rounds "
                f"({o['worker_jobs_per_s']:.2f} vs {o['direct_jobs_per_s']:.2f} jobs/s; ratio of totals "
                f"{o.get('ratio_of_totals', math.nan):.3f}, of CPU seconds "
                f"{o.get('ratio_of_cpu_seconds', math.nan):.3f}; rounds "
                f"{', '.join(f'{r:.2f}' for r in o['ratio_per_round'])})",
                f"{o['ratio']:.3f}",
                f">= {OVERHEAD_TARGET}",
                o["ratio"] >= OVERHEAD_TARGET,
            )
        )
        if "job_sample_s" in o:
            out.append(
                Row(
                    "",
                    "inside a job (batching off): the pipeline call (s) / PNG encoding (ms), medians",
                    f"{o['job_sample_s']:.3f} / {1000 * o['job_encode_s']:.1f}",
                )
            )
        out.append(
            Row(
                "",
                f"as shipped (batching, speed settings) ÷ plain diffusers loop ({o['shipped_jobs_per_s']:.2f} vs "
                f"{o['plain_diffusers_jobs_per_s']:.2f} jobs/s)",
                f"{o['shipped_vs_plain']:.2f}x",
            )
        )
    if "batching" in report:
        b = report["batching"]
        curve = b["curve"]
        eight = next((c for c in curve if c["batch_max"] == 8), curve[-1])
        out.append(
            Row(
                "2 batching",
                f"{b['waiting_jobs']} waiting jobs, throughput ÷ B=1, for B = "
                + " / ".join(str(c["batch_max"]) for c in curve),
                " / ".join(f"{c['speedup']:.2f}" for c in curve),
                f">= {BATCH_TARGET} at 8",
                eight["speedup"] >= BATCH_TARGET,
            )
        )
        worst = max(c["max_pixel_diff"] for c in curve)
        out.append(Row("", "batched image vs its unbatched run: largest pixel difference (0-255)", f"{worst}"))
    if "sampler" in report:
        s = report["sampler"]
        flops = s["unet_flops_per_call"]
        out.append(
            Row(
                "3 sampler",
                "measured peak matmul: float32 / bf16 (GFLOP/s); UNet GFLOP per call at batch " + " / ".join(flops),
                f"{s['peak_fp32_flop_per_s'] / 1e9:.0f} / {_or_none(s['peak_bf16_flop_per_s'] / 1e9, '.0f')}; "
                + " / ".join(f"{v / 1e9:.2f}" for v in flops.values()),
            )
        )
        for r in s["rows"]:
            out.append(
                Row(
                    "",
                    f"{r['setting']}, batch {r['batch']}: s/image at {s['steps']} steps "
                    f"(x float32), share of fp32 / bf16 peak",
                    f"{r['seconds_per_image']:.3f} ({r['speedup_vs_float32']:.2f}x), "
                    f"{100 * r['share_of_fp32_peak']:.1f}% / {_or_none(100 * r['share_of_bf16_peak'], '.1f', '%')}",
                )
            )
    if "frontend" in report and "burst" in report["frontend"]:
        f = report["frontend"]["burst"]
        first, queued = f["first_response_ms"], f["queue_position_ms"]
        out.append(
            Row(
                "4 front end burst",
                f"{f['interactions']} /imagine in {f['sent_within_s']:.2f} s: first response p50 / p99 (ms)",
                f"{first['p50']:.0f} / {first['p99']:.0f}",
                f"< {FIRST_RESPONSE_LIMIT_MS:.0f}",
                first["max"] < FIRST_RESPONSE_LIMIT_MS,
            )
        )
        out.append(Row("", "to the '#n in queue' reply p50 / p99 (ms)", f"{queued['p50']:.0f} / {queued['p99']:.0f}"))
    if "frontend" in report and "queue" in report["frontend"]:
        q = report["frontend"]["queue"]
        w, p = q["enqueue_to_start_ms"], q["end_to_posted_ms"]
        out.append(
            Row(
                "5 queue overhead",
                f"{q['jobs']} jobs: enqueue -> start, median / p95 (ms)",
                f"{w['median']:.1f} / {w['p95']:.1f}",
            )
        )
        out.append(Row("", "sampler done -> result posted, median / p95 (ms)", f"{p['median']:.1f} / {p['p95']:.1f}"))
    if "load" in report:
        load = report["load"]
        busy = "; ".join(load.get("busy_processes_at_end") or []) or "none"
        out.append(
            Row(
                "machine",
                f"{load['cpus']} CPUs, load average (1 min) at start / end; other busy processes: {busy}",
                f"{load['loadavg_1m_at_start']} / {load['loadavg_1m_at_end']}",
            )
        )
    return out


def table(report: dict[str, Any]) -> str:
    found = rows(report)
    widths = [max(len(getattr(r, f)) for r in found) for f in ("section", "value", "target")]
    lines = []
    for r in found:
        mark = "" if r.met is None else ("  ok" if r.met else "  MISSED")
        lines.append(
            f"{r.section:<{widths[0]}}  {r.value:>{widths[1]}}  {r.target:<{widths[2]}}{mark:<8}  {r.measure}".rstrip()
        )
    return "\n".join(lines)


def write_json(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=_jsonable) + "\n")


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    raise TypeError(f"not JSON: {type(value).__name__}")


def write_chart(report: dict[str, Any], path: Path) -> None:
    """Four panels: batching curve, sampler settings, worker vs direct, latencies."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    (ax_batch, ax_sampler), (ax_over, ax_lat) = axes
    if "batching" in report:
        curve = report["batching"]["curve"]
        xs = [c["batch_max"] for c in curve]
        ax_batch.plot(xs, [c["speedup"] for c in curve], "o-", label="measured")
        ax_batch.plot(xs, xs, ":", color="grey", label="linear")
        ax_batch.axhline(BATCH_TARGET, color="red", lw=0.8, ls="--", label=f"target at 8: {BATCH_TARGET}x")
        ax_batch.set_xscale("log", base=2)
        ax_batch.set_xticks(xs, [str(x) for x in xs])
        ax_batch.set_xlabel("B (batch_max), 8 waiting jobs")
        ax_batch.set_ylabel("throughput ÷ B=1")
        ax_batch.set_title("2. Cross-job batching")
        ax_batch.legend()
    if "sampler" in report:
        srows = report["sampler"]["rows"]
        settings = list(dict.fromkeys(r["setting"] for r in srows))
        batches = sorted({r["batch"] for r in srows})
        width = 0.8 / len(batches)
        for k, b in enumerate(batches):
            vals = [
                next(r["seconds_per_image"] for r in srows if r["setting"] == s and r["batch"] == b) for s in settings
            ]
            ax_sampler.bar([i + k * width for i in range(len(settings))], vals, width, label=f"batch {b}")
        labels = [name.replace(" + ", "\n+ ").replace(", ", ",\n") for name in settings]
        ax_sampler.set_xticks([i + width * (len(batches) - 1) / 2 for i in range(len(settings))], labels, fontsize=8)
        ax_sampler.set_ylabel(f"seconds per image ({report['sampler']['steps']} steps)")
        ax_sampler.set_title("3. Sampler on the shipped model")
        ax_sampler.legend()
    if "overhead" in report:
        o = report["overhead"]
        labels = ["direct loop", "through imagine\n(batching off)", "plain diffusers", "imagine as shipped"]
        vals = [
            o["direct_jobs_per_s"],
            o["worker_jobs_per_s"],
            o["plain_diffusers_jobs_per_s"],
            o["shipped_jobs_per_s"],
        ]
        ax_over.bar(labels, vals, color=["#999", "#4a8", "#999", "#28a"])
        ax_over.set_ylabel("jobs per second")
        ax_over.set_title(f"1. Worker overhead: ratio {o['ratio']:.3f} (target {OVERHEAD_TARGET})")
        ax_over.tick_params(axis="x", labelsize=8)
    fe = report.get("frontend", {})
    bars: list[tuple[str, float, float]] = []
    if "burst" in fe:
        b = fe["burst"]
        bars.append(("first response", b["first_response_ms"]["p50"], b["first_response_ms"]["p99"]))
        bars.append(("'#n in queue'", b["queue_position_ms"]["p50"], b["queue_position_ms"]["p99"]))
    if "queue" in fe:
        q = fe["queue"]
        bars.append(("enqueue→start", q["enqueue_to_start_ms"]["median"], q["enqueue_to_start_ms"]["p95"]))
        bars.append(("done→posted", q["end_to_posted_ms"]["median"], q["end_to_posted_ms"]["p95"]))
    if bars:
        spots = list(range(len(bars)))
        ax_lat.bar([x - 0.2 for x in spots], [b[1] for b in bars], 0.4, label="median")
        ax_lat.bar([x + 0.2 for x in spots], [b[2] for b in bars], 0.4, label="p99 (burst) / p95 (queue)")
        ax_lat.axhline(FIRST_RESPONSE_LIMIT_MS, color="red", lw=0.8, ls="--", label="Discord's 3 s")
        ax_lat.set_yscale("log")
        ax_lat.set_xticks(spots, [b[0] for b in bars], fontsize=8)
        ax_lat.set_ylabel("milliseconds")
        ax_lat.set_title("4-5. Bot under a burst; queue overhead")
        ax_lat.legend(fontsize=8)
    load = report.get("load", {})
    fig.suptitle(
        f"imagine-bench: model {report.get('model', '?')}, {report.get('threads', 1)} torch thread(s), "
        f"load average {load.get('loadavg_1m_at_start')} → {load.get('loadavg_1m_at_end')} on {load.get('cpus')} CPUs"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _or_none(value: float, spec: str, unit: str = "") -> str:
    """A figure, or "none" where the machine has nothing to measure (no bf16 units: NaN)."""
    return "none" if math.isnan(value) else format(value, spec) + unit
