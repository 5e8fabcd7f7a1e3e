"""What a chaos run (`bench/chaos.py`) keeps of each request and each worker kill, and the report it prints: every
request accounted for, and how soon a dead worker's jobs came back."""

from __future__ import annotations

import argparse
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

HEARTBEAT_TTL = 5
MAINTENANCE_INTERVAL = 2


@dataclass
class Request:
    index: int
    member: int
    channel: int
    prompt: str
    submitted: float
    interaction: int = 0
    message: int = 0
    job: str | None = None
    outcome: str = "open"  # delivered | failed | refused | lost
    detail: str = ""
    results: int = 0


@dataclass
class Kill:
    at: float
    pid: int
    jobs: list[str]
    #: Other workers already sweeping when it died (0: the job waits for a new worker to start).
    sweepers: int = 0
    requeued_s: list[float] = field(default_factory=list)
    retried_s: list[float] = field(default_factory=list)


def report(
    args: argparse.Namespace,
    requests: list[Request],
    kills: list[Kill],
    redis_restarts: list[dict[str, float]],
    faults: list[tuple[str, Any]],
    elapsed: float,
) -> dict[str, Any]:
    """Every request's outcome counted, and the times from a worker's death to its jobs' requeue and retry."""
    outcomes = {k: sum(1 for r in requests if r.outcome == k) for k in ("delivered", "failed", "refused", "lost")}
    duplicated = [r.index for r in requests if r.results > 1]
    requeued = [s for k in kills for s in k.requeued_s]
    swept = [s for k in kills if k.sweepers for s in k.requeued_s]
    retried = [s for k in kills for s in k.retried_s]
    return {
        "jobs": args.jobs,
        "members": args.members,
        "workers": args.workers,
        "elapsed_s": round(elapsed, 1),
        "submitted": len(requests),
        "accepted": sum(1 for r in requests if r.job),
        **outcomes,
        "duplicated": len(duplicated),
        "worker_kills": len(kills),
        "jobs_on_killed_workers": sum(len(k.jobs) for k in kills),
        "redis_restarts": redis_restarts,
        "discord_faults": [f"{what}: {fault.hits} hit" for what, fault in faults],
        "discord_fault_hits": sum(fault.hits for _, fault in faults),
        "bound_s": HEARTBEAT_TTL + MAINTENANCE_INTERVAL,
        "death_to_requeue_s": {"max": max(requeued, default=None), "median": _median(requeued)},
        "death_to_requeue_with_a_sweeper_alive_s": {"max": max(swept, default=None), "median": _median(swept)},
        "death_to_retry_start_s": {"max": max(retried, default=None), "median": _median(retried)},
        "kills": [asdict(k) for k in kills],
        "not_delivered": [asdict(r) for r in requests if r.outcome != "delivered"],
        "duplicates": duplicated,
    }


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


def summary(report: dict[str, Any]) -> str:
    r = report
    lines = [
        f"chaos: {r['jobs']} jobs from {r['members']} members, {r['workers']} workers, {r['elapsed_s']} s; "
        f"{r['worker_kills']} worker kills ({r['jobs_on_killed_workers']} jobs running on them), "
        f"{len(r['redis_restarts'])} Redis crash+restart, {len(r['discord_faults'])} Discord faults "
        f"({r['discord_fault_hits']} requests answered 429/5xx/late)",
        f"submitted {r['submitted']} · accepted {r['accepted']} · delivered {r['delivered']} · "
        f"failed with a message {r['failed']} · refused with a message {r['refused']} · "
        f"duplicated {r['duplicated']} · lost {r['lost']}",
        f"worker death -> job requeued: max {r['death_to_requeue_s']['max']} s, median "
        f"{r['death_to_requeue_s']['median']} s (bound {r['bound_s']} s = heartbeat_ttl {HEARTBEAT_TTL} + "
        f"maintenance_interval {MAINTENANCE_INTERVAL})",
        f"  ... when another worker was running to sweep: max {r['death_to_requeue_with_a_sweeper_alive_s']['max']} s, "
        f"median {r['death_to_requeue_with_a_sweeper_alive_s']['median']} s",
        f"worker death -> retry started on another worker: max {r['death_to_retry_start_s']['max']} s, median "
        f"{r['death_to_retry_start_s']['median']} s",
    ]
    for request in r["not_delivered"]:
        lines.append(f"  #{request['index']} {request['outcome']}: {request['detail'][:150]}")
    return "\n".join(lines)
