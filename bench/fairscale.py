"""The fair queue at any size: enqueue, a worker's pop and cancel at 1,000 / 10,000 / 100,000 waiting jobs.

Each size fills a private embedded Redis with that many waiting jobs spread over 10 / 1,000 / 10,000 members in
10 / 100 / 1,000 servers (`SIZES`), then times `OPS` single operations of each kind through the real scripts
(`imagine.fair`: enqueue is the placing script without admission checks, pop is what a worker's dequeue runs,
cancel takes a random waiting job out), as the client sees them (one round trip each), and reads the longest single
Redis command from SLOWLOG. The old design (one Lua script that rewrote RQ's list on every change, kept in
`bench/fair_old_lua.py`) is measured beside it at 1,000 jobs only: it costs O(waiting jobs x members) per enqueue,
seconds at 10,000 (issue 16 measured 2.0 s at 2,500 jobs of 2,500 members), past Redis's script time limit.

Usage: python -m bench.fairscale [--quick] [--ops 1000] [--out out/fairscale.json] [--chart bench/fairscale.png]
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from bench import common
from bench import fair_old_lua as old
from imagine import fair, fair_lua, keys

#: (waiting jobs, members, servers)
SIZES = [(1_000, 10, 10), (10_000, 1_000, 100), (100_000, 10_000, 1_000)]
#: --quick: a tenth of each (a smoke test, seconds).
QUICK_SIZES = [(100, 10, 10), (1_000, 100, 10), (10_000, 1_000, 100)]
QUEUE = "bench:fair"
OLD_QUEUE = "bench:old"
#: SLOWLOG records commands longer than this (microseconds); the longest is reported.
SLOW_US = 100
#: Goals from issue 16, at 100,000 waiting.
GOAL_P99_MS, GOAL_COMMAND_MS = 2.0, 5.0


def _where(i: int, members: int, servers: int) -> tuple[int, int]:
    """(server, member) of the i-th job: members take turns, each in a fixed server."""
    m = i % members
    return 1 + m % servers, 10_000_000 + m


def fill(conn: redis.Redis, jobs: int, members: int, servers: int) -> list[str]:
    """`jobs` waiting jobs through the placing script, pipelined in batches; their ids in arrival order."""
    fair.clear(conn, QUEUE)
    script = conn.register_script(fair_lua.SUBMIT)
    front = fair.front_key(QUEUE)
    base = [front, front + ":intermediate", keys.PAUSED, "-", "-", "-"]
    ids = []
    with conn.pipeline(transaction=False) as pipe:
        for i in range(jobs):
            g, u = _where(i, members, servers)
            job_id = f"j{i}"
            ids.append(job_id)
            args = [fair.prefix(QUEUE), job_id, str(g), str(u), repr(time.time()), "", "", "", "", "", "", ""]
            script(keys=base, args=args, client=pipe)
            if len(pipe) >= 2000:
                pipe.execute()
        pipe.execute()
    return ids


def _slowest_us(conn: redis.Redis) -> int:
    """The longest command SLOWLOG recorded (those over `SLOW_US`), the bench's own SLOWLOG and INFO calls aside."""
    entries = conn.slowlog_get(100_000)
    ours = (b"SLOWLOG", b"INFO")
    return max((int(e["duration"]) for e in entries if not bytes(e["command"]).startswith(ours)), default=0)


def _redis_usec(conn: redis.Redis) -> tuple[int, int]:
    """(calls, microseconds) Redis spent in scripts and commands so far (INFO commandstats)."""
    stats = conn.info("commandstats")
    calls = sum(int(v["calls"]) for k, v in stats.items() if not k.startswith(("cmdstat_info", "cmdstat_slowlog")))
    usec = sum(int(v["usec"]) for k, v in stats.items() if not k.startswith(("cmdstat_info", "cmdstat_slowlog")))
    return calls, usec


def timed(conn: redis.Redis, calls: list[Callable[[], Any]]) -> dict[str, float]:
    """Median and p99 of each call's wall time as the client sees it (ms), Redis's own mean time per operation
    (us, from its command stats: what a loaded machine's scheduling adds to the wall times is not in it), and the
    longest single Redis command meanwhile (ms, SLOWLOG)."""
    conn.slowlog_reset()
    _, usec0 = _redis_usec(conn)
    took = []
    for call in calls:
        t0 = time.perf_counter()
        call()
        took.append((time.perf_counter() - t0) * 1000)
    _, usec1 = _redis_usec(conn)
    return {
        "median_ms": round(common.median(took), 3),
        "p99_ms": round(common.percentile(took, 0.99), 3),
        "redis_us": round((usec1 - usec0) / max(1, len(calls)), 1),
        "max_command_ms": round(_slowest_us(conn) / 1000, 3),
    }


def new_design(conn: redis.Redis, jobs: int, members: int, servers: int, ops: int) -> dict[str, Any]:
    rng = random.Random(jobs)
    before = int(conn.info("memory")["used_memory"])
    t0 = time.perf_counter()
    fill(conn, jobs, members, servers)
    fill_s = time.perf_counter() - t0
    per_job = (int(conn.info("memory")["used_memory"]) - before) / jobs
    assert fair.count(conn, QUEUE) == jobs

    def enqueue(k: int) -> Callable[[], Any]:
        g, u = _where(rng.randrange(members), members, servers)
        return lambda: fair.place(conn, QUEUE, f"x{k}", g, u)

    row: dict[str, Any] = {"jobs": jobs, "members": members, "servers": servers, "fill_s": round(fill_s, 1)}
    row["bytes_per_job"] = round(per_job)
    row["enqueue"] = timed(conn, [enqueue(k) for k in range(ops)])
    row["pop"] = timed(conn, [lambda: fair.pop(conn, QUEUE)] * ops)
    still = sorted(fair._text(i) for i in conn.hkeys(fair.prefix(QUEUE) + "meta"))  # not timed: who is waiting now
    victims = rng.sample(still, min(ops, len(still) // 2))
    row["cancel"] = timed(conn, [functools.partial(fair.take_out, conn, QUEUE, v) for v in victims])
    assert fair.count(conn, QUEUE) == len(still) - len(victims)
    conn.delete(fair.front_key(QUEUE) + ":intermediate")
    return row


def old_design(conn: redis.Redis, jobs: int, members: int, servers: int, ops: int) -> dict[str, Any]:
    """The old rewrite-everything script at `jobs` waiting, filled in one plan (filling it job by job is O(n^2))."""
    ready = f"rq:queue:{OLD_QUEUE}"
    names = [ready, *(keys.fair(OLD_QUEUE, n) for n in ("meta", "served", "vt")), keys.PAUSED]
    names.append(keys.fair(OLD_QUEUE, "seq"))
    conn.delete(*names[:4], names[5])
    with conn.pipeline(transaction=False) as pipe:
        for i in range(jobs):
            g, u = _where(i, members, servers)
            pipe.hset(names[1], f"o{i}", json.dumps({"g": str(g), "u": str(u), "s": i + 1, "p": 0}))
            pipe.rpush(ready, f"o{i}")
        pipe.set(names[5], jobs)
        pipe.execute()
    submit, cancel, replan = (conn.register_script(s) for s in (old.SUBMIT, old.CANCEL, old.REPLAN))
    replan(keys=names, args=[""])
    rng = random.Random(jobs)

    def enqueue(k: int) -> Callable[[], Any]:
        g, u = _where(rng.randrange(members), members, servers)
        args = [f"y{k}", str(g), str(u), repr(time.time()), "", "", "", "", "", ""]
        return lambda: submit(keys=[*names, "-", "-", "-"], args=args)

    row: dict[str, Any] = {"jobs": jobs, "members": members, "servers": servers}
    row["enqueue"] = timed(conn, [enqueue(k) for k in range(ops)])
    # A worker's pop was RQ's LPOP, O(1): its bookkeeping waited for the next change's rewrite (in `enqueue`).
    row["pop"] = timed(conn, [lambda: conn.lpop(ready)] * ops)
    victims = rng.sample([f"o{i}" for i in range(jobs // 2, jobs)], ops)
    row["cancel"] = timed(conn, [functools.partial(cancel, keys=names, args=[v]) for v in victims])
    return row


def run(url: str, ops: int, old_ops: int, sizes: list[tuple[int, int, int]] = SIZES) -> dict[str, Any]:
    conn = redis.Redis.from_url(url)
    # The queue's own commands are measured, not persistence: an AOF rewrite forks Redis, and the fork stalls every
    # command for a moment whatever the queue's design.
    conn.config_set("appendonly", "no")
    conn.config_set("slowlog-log-slower-than", SLOW_US)
    conn.config_set("slowlog-max-len", 100_000)
    out: dict[str, Any] = {"ops": ops, "new": [], "old": []}
    for jobs, members, servers in sizes:
        _say(f"fair queue: {jobs:,} waiting, {members:,} members, {servers:,} servers …")
        out["new"].append(new_design(conn, jobs, members, servers, ops))
    jobs, members, servers = sizes[0]
    _say(f"old design: {jobs:,} waiting …")
    out["old"].append(old_design(conn, jobs, members, servers, old_ops))
    big, small = out["new"][-1], out["new"][0]
    for figure in ("median_ms", "p99_ms", "redis_us"):
        out[f"growth_{figure}"] = {
            op: round(big[op][figure] / max(small[op][figure], 1e-9), 2) for op in ("enqueue", "pop", "cancel")
        }
    out["goals_met"] = all(
        big[op]["p99_ms"] <= GOAL_P99_MS and big[op]["max_command_ms"] <= GOAL_COMMAND_MS
        for op in ("enqueue", "pop", "cancel")
    )
    conn.config_set("slowlog-log-slower-than", 10_000)
    conn.close()
    return out


def table(result: dict[str, Any]) -> str:
    lines = [
        "6. fair queue at scale: ms median / p99 per operation as the client sees it (Redis's own mean, us);"
        " the longest single Redis command",
        "| waiting | members | servers | design | enqueue | pop | cancel | longest command |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for design in ("new", "old"):
        for row in result[design]:
            cells = [
                f"{row[op]['median_ms']:.2f} / {row[op]['p99_ms']:.2f} ({row[op]['redis_us']:.0f} us)"
                for op in ("enqueue", "pop", "cancel")
            ]
            longest = max(row[op]["max_command_ms"] for op in ("enqueue", "pop", "cancel"))
            lines.append(
                f"| {row['jobs']:,} | {row['members']:,} | {row['servers']:,} | {design} | "
                + " | ".join(cells)
                + f" | {longest:.2f} ms |"
            )
    for figure in ("median_ms", "p99_ms", "redis_us"):
        growth = ", ".join(f"{op} {g:.2f}x" for op, g in result[f"growth_{figure}"].items())
        lines.append(f"growth of the {figure} from the smallest size to the largest: {growth}")
    lines.append(f"goals (p99 <= {GOAL_P99_MS} ms, no command over {GOAL_COMMAND_MS} ms) met: {result['goals_met']}")
    lines.append(f"fair bookkeeping per waiting job: {result['new'][-1]['bytes_per_job']:,} bytes at the largest size")
    return "\n".join(lines)


def chart(result: dict[str, Any], path: Path) -> None:
    """The growth curve (a small PNG): Redis's own time per operation (solid) and the client's p99 (dotted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 3.2), dpi=80)
    sizes = [row["jobs"] for row in result["new"]]
    for (op, mark), color in zip((("enqueue", "o"), ("pop", "s"), ("cancel", "^")), ("C0", "C1", "C2"), strict=True):
        redis_ms = [row[op]["redis_us"] / 1000 for row in result["new"]]
        ax.plot(sizes, redis_ms, marker=mark, color=color, label=f"{op}: Redis time")
        ax.plot(sizes, [row[op]["p99_ms"] for row in result["new"]], linestyle=":", color=color, linewidth=1)
        old_ms = [max(r[op]["redis_us"] / 1000, 1e-3) for r in result["old"]]
        ax.scatter([r["jobs"] for r in result["old"]], old_ms, marker=mark, color="grey")
    ax.axhline(GOAL_P99_MS, color="red", linestyle="--", linewidth=1, label="goal: p99 2 ms")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("jobs waiting")
    ax.set_ylabel("ms per operation")
    ax.set_title("fair queue: Redis time (solid), client p99 (dotted); old design grey", fontsize=8)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fairscale", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of each size, 200 operations (a smoke test)")
    parser.add_argument("--ops", type=int, default=1000, help="operations of each kind per size")
    parser.add_argument("--out", type=Path, default=common.ROOT / "out" / "fairscale.json")
    parser.add_argument("--chart", type=Path, default=common.ROOT / "out" / "fairscale.png")
    args = parser.parse_args(argv)
    ops = 200 if args.quick else args.ops
    with common.embedded_redis(Path(tempfile.mkdtemp(prefix="imagine-fairscale-")) / "redis") as url:
        result = run(url, ops, 20 if args.quick else 50, QUICK_SIZES if args.quick else SIZES)
    print(table(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    chart(result, args.chart)
    print(f"wrote {args.out} and {args.chart}")


if __name__ == "__main__":
    main()
