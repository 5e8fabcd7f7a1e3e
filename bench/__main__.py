"""`make bench`: where a job's time goes, as ratios measured side by side in one run; a table, JSON and a PNG chart.

Sections (see each module's docstring):
  1. worker overhead and 2. cross-job batching  (bench/throughput.py)
  3. the sampler on the shipped model            (bench/sampler.py)
  4. the bot under a burst and 5. queue overhead (bench/frontend.py)
  6. the fair queue at 1,000 to 100,000 waiting  (bench/fairscale.py; alone: python -m bench.fairscale)
  banned: banned words, worst patterns against long prompts, beside the old regex (bench/blocklist.py)

Torch runs one thread everywhere (the bench's own calls and the worker's): on a shared 2-core machine two threads
are slower, and one keeps the sides comparable. The machine's load is measured and printed with the results.

Usage: python -m bench [--sections 1,2,3,4,5,6,banned] [--quick] [--out out/bench.json] [--chart out/bench.png]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import common, report

log = logging.getLogger("bench")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default="1,2,3,4,5,6,banned", help="which sections to run (default: all)")
    parser.add_argument("--model", help="registry name (default: the registry's default, the shipped model)")
    parser.add_argument("--quick", action="store_true", help="few jobs and rounds, 2 steps (a smoke test, seconds)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per comparison (batching, sampler)")
    # One job's time moves by +-15% from run to run on a 2-core machine; 16 rounds of 3 keep the median's spread
    # near +-2% (10 rounds of 2 gave 0.94 to 1.03 in three runs of the same code).
    parser.add_argument("--overhead-rounds", type=int, default=16, help="alternating rounds for the worker overhead")
    parser.add_argument("--jobs", type=int, default=3, help="jobs per round for the worker overhead")
    parser.add_argument("--burst", type=int, default=100, help="interactions in the front-end burst")
    parser.add_argument("--queue-jobs", type=int, default=200, help="jobs for the queue overhead")
    parser.add_argument("--out", type=Path, default=common.ROOT / "out" / "bench.json")
    parser.add_argument("--chart", type=Path, default=common.ROOT / "out" / "bench.png")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    sections = {s.strip() for s in args.sections.split(",") if s.strip()}
    common.quiet()
    common.set_threads(1)
    load = common.Load()
    started = time.perf_counter()
    rounds = 1 if args.quick else args.rounds
    out: dict[str, Any] = {"threads": 1, "quick": args.quick}
    work = Path(tempfile.mkdtemp(prefix="imagine-bench-"))
    data_dir = work / "data"
    with common.embedded_redis(work / "redis") as url:
        if sections & {"1", "2", "3"}:
            from bench import throughput

            rig = throughput.Rig(url, data_dir, args.model)
            out["model"] = rig.entry.name
            steps = 2 if args.quick else None
            if "1" in sections:
                _say("1. worker overhead …")
                over_rounds = 1 if args.quick else args.overhead_rounds
                out["overhead"] = throughput.overhead(rig, 2 if args.quick else args.jobs, over_rounds, steps)
            if "2" in sections:
                _say("2. cross-job batching …")
                out["batching"] = throughput.batching(rig, 8, [1, 2, 4, 8], rounds, steps)
            if "3" in sections:
                from bench import sampler

                _say("3. sampler …")
                names = [sampler.shipped(), "float32"] if args.quick else list(sampler.SETTINGS)
                out["sampler"] = sampler.sampler(
                    rig.pipe, steps or rig.entry.steps, rig.entry.guidance, [1, 8], max(1, rounds - 1), names
                )
            rig.conn.flushdb()
        if sections & {"4", "5"}:
            from bench import frontend

            _say("4-5. front end and queue …")
            model = out.get("model")
            burst = 10 if args.quick else args.burst
            jobs = 5 if args.quick else args.queue_jobs
            out["frontend"] = frontend.frontend(work, url, data_dir, burst, jobs, model)
    if "6" in sections:
        from bench import fairscale

        _say("6. fair queue at scale …")
        with common.embedded_redis(work / "redis-fair") as url:
            sizes = fairscale.QUICK_SIZES if args.quick else fairscale.SIZES
            out["fairscale"] = fairscale.run(url, 200 if args.quick else 1000, 20 if args.quick else 50, sizes)
    if "banned" in sections:
        from bench import blocklist

        _say("banned words …")
        out["blocklist"] = blocklist.run(quick=args.quick)
    load.finish()
    out["load"] = load.as_dict()
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    result = run(args)
    print(report.table(result))
    if "fairscale" in result:
        from bench import fairscale

        print()
        print(fairscale.table(result["fairscale"]))
    if "blocklist" in result:
        from bench import blocklist

        print("\n" + blocklist.table(result["blocklist"]))
    report.write_json(result, args.out)
    report.write_chart(result, args.chart)
    print(f"\n{result['seconds']:.0f} s; wrote {args.out} and {args.chart}")


if __name__ == "__main__":
    main()
