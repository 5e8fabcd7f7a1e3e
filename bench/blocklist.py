"""Banned words: the worst patterns we know against long prompts, the new matcher beside the old regex.

- Worst patterns: each against 1,000-character prompts of the shapes that hurt most (one long word, single
  letters, digits to read as letters, repeated letters); the check's median and worst time. Goal: under 5 ms.
  The old regex (bench/blocklist_regex.py, kept here only) runs in a child process on growing prompts until one
  check takes over `--old-budget` seconds; the ratio is old/new at the longest prompt it finished.
- Growth: the worst pattern at 1,000 / 2,000 / 4,000 / 8,000 characters (linear: each doubling ~2x).
- A full server: 10 and 100 patterns of 100 characters, 500 of 20 (the most a server may now add: 10,000
  characters in all), and 500 of 100 (stored before that cap), all full of wildcards, against a 1,000-character
  prompt that keeps every pattern half-matched. Linear in both the patterns' characters and the prompt.
- Folding: a prompt's normalisation (skeleton, words, look-alikes) per character at 1,000 to 16,000 characters.

Usage: python -m bench.blocklist [--quick] [--out out/blocklist.json]
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import blocklist_regex  # noqa: E402
from bench.common import percentile  # noqa: E402
from imagine import blocklist, moderation  # noqa: E402

GOAL_MS = 5.0
# (pattern, what makes it bad). The first two backtrack in the old regex like n^6 and n^4.
WORST = [
    ("a*a*a*a*a*a*z", "6 wildcards, never completes"),
    ("a*a*a*a*z", "4 wildcards (the most allowed)"),
    ("*a*a*a*a*", "wildcards at both ends"),
    ("a* a* a* a* z", "a phrase of wildcard words"),
    ("a" * 99 + "z", "100 letters, one long near-miss"),
    ("g o r e", "a phrase of single letters"),
]
SHAPES: dict[str, Callable[[int], str]] = {
    "one long word": lambda n: "a" * n,
    "single letters": lambda n: ("a " * n)[:n],
    "digits as letters": lambda n: ("a4" * n)[:n],
    "words": lambda n: ("aaaa aa " * n)[:n],
}


def timed(func: Callable[[str], object], text: str, repeat: int) -> list[float]:
    """Milliseconds of `repeat` calls of `func(text)`, after one to warm the caches (masks, folding table)."""
    func(text)
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        func(text)
        out.append((time.perf_counter() - start) * 1e3)
    return out


class OldRegex:
    """The old matcher in a child process of its own, so that a check which runs away can be stopped."""

    def __init__(self) -> None:
        self._start()

    def _start(self) -> None:
        ctx = multiprocessing.get_context("spawn")  # not fork: the bench's process may hold torch's threads
        self.conn, child_end = ctx.Pipe()
        self.child = ctx.Process(target=_serve_old, args=(child_end,), daemon=True)
        self.child.start()
        self.conn.recv()  # ready: its imports are not part of any check's budget

    def check(self, pattern: str, text: str, budget_s: float) -> float | None:
        """One check's milliseconds, or None when it ran past the budget (the child is then replaced)."""
        self.conn.send((pattern, text))
        if self.conn.poll(budget_s):
            return float(self.conn.recv())
        self.child.kill()
        self.child.join()
        self._start()
        return None

    def close(self) -> None:
        self.conn.send(None)
        self.child.join(5)


def _serve_old(conn: Any) -> None:
    conn.send("ready")
    while (item := conn.recv()) is not None:
        pattern, text = item
        start = time.perf_counter()
        blocklist_regex.matches(text, [pattern])
        conn.send((time.perf_counter() - start) * 1e3)


def old_longest(old: OldRegex, pattern: str, shape: Callable[[int], str], budget_s: float) -> tuple[int, float]:
    """The longest prompt (10, 20 ... 100, 200 ... 1,000 characters) the old regex checks within the budget."""
    best = (0, math.nan)
    length = 10
    while length <= 1000:
        ms = old.check(pattern, shape(length), budget_s)
        if ms is None:
            break
        best = (length, ms)
        length += 10 if length < 100 else 100
    return best


def worst_patterns(repeat: int, budget_s: float) -> list[dict[str, Any]]:
    rows = []
    old = OldRegex()
    for pattern, why in WORST:
        matcher = blocklist.Blocklist([pattern])
        new = {name: timed(matcher.matches, shape(1000), repeat) for name, shape in SHAPES.items()}
        new_shape = max(new, key=lambda k: statistics.median(new[k]))
        # The old regex's worst shape: the one where it gives up soonest (then the slowest at that length).
        olds = {name: old_longest(old, pattern, shape, budget_s) for name, shape in SHAPES.items()}
        old_shape = min(olds, key=lambda k: (olds[k][0], -olds[k][1]))
        old_len, old_ms = olds[old_shape]
        same = statistics.median(timed(matcher.matches, SHAPES[old_shape](old_len), repeat)) if old_len else math.nan
        rows.append(
            {
                "pattern": pattern,
                "why": why,
                "refused_at_add": _refused(pattern),
                "new_worst_shape": new_shape,
                "new_ms_median": statistics.median(new[new_shape]),
                "new_ms_p90": percentile(new[new_shape], 0.9),
                "old_worst_shape": old_shape,
                "old_longest_chars": old_len,
                "old_gave_up": old_len < 1000,
                "old_ms": old_ms,
                "new_ms_same_prompt": same,
                "ratio_old_over_new": old_ms / same if old_len else math.nan,
            }
        )
    old.close()
    return rows


def _refused(pattern: str) -> bool:
    try:
        moderation.clean_pattern(pattern)
    except moderation.RuleError:
        return True
    return False


def growth(repeat: int) -> list[dict[str, Any]]:
    matcher = blocklist.Blocklist(["a*a*a*a*a*a*z"])
    return [
        {"chars": n, "ms": min(timed(matcher.matches, "a" * n, repeat))}  # min: the least noisy
        for n in (1000, 2000, 4000, 8000)
    ]


def full_server(repeat: int) -> list[dict[str, Any]]:
    """Wildcard-laden patterns against a 1,000-character prompt that keeps every one of them half-matched."""
    rnd = random.Random(16)
    rows = []
    sizes = [(10, 100), (100, 100), (moderation.MAX_PATTERNS, moderation.MAX_BANNED_CHARS // moderation.MAX_PATTERNS)]
    sizes.append((moderation.MAX_PATTERNS, moderation.MAX_PATTERN_CHARS))  # stored before the total cap
    for count, length in sizes:
        patterns = ["".join(rnd.choice("aa*") for _ in range(length - 1)) + "z" for _ in range(count)]
        matcher = blocklist.Blocklist(patterns)
        times = timed(matcher.matches, ("a a4 " * 200)[:1000], repeat)
        rows.append(
            {
                "patterns": count,
                "chars_each": length,
                "within_limits": count * length <= moderation.MAX_BANNED_CHARS,
                "positions": matcher.size,
                "ms": statistics.median(times),
                "ms_min": min(times),
            }
        )
    return rows


def folding(repeat: int) -> list[dict[str, Any]]:
    base = "A gоre scene, g.o.r.e, g0re and góre: ｆｕｌｌ width, z\u200bero width, goooore. "
    rows = []
    for n in (1000, 4000, 16000):
        text = (base * (n // len(base) + 1))[:n]
        ms = statistics.median(timed(blocklist.symbols, text, repeat))
        rows.append({"chars": n, "ms": ms, "us_per_char": ms * 1e3 / n})
    return rows


def run(quick: bool = False, old_budget_s: float = 1.0) -> dict[str, Any]:
    repeat = 3 if quick else 15
    return {
        "goal_ms": GOAL_MS,
        "worst": worst_patterns(repeat, 0.2 if quick else old_budget_s),
        "growth": growth(repeat),
        "full_server": full_server(repeat),
        "folding": folding(repeat),
    }


def table(result: dict[str, Any]) -> str:
    lines = [f"banned words: worst patterns against 1,000 characters (goal: a check under {GOAL_MS:g} ms)"]
    lines.append(
        f"  {'pattern':<22} {'refused':>7} {'new ms':>7} {'p90':>6}   "
        "old regex: longest prompt in budget, ms, new ms, old/new"
    )
    for r in result["worst"]:
        gave_up = "+" if r["old_gave_up"] else " "
        old = (
            f"{r['old_longest_chars']:>5}{gave_up}ch {r['old_ms']:>8.1f} {r['new_ms_same_prompt']:>6.2f} "
            f"{r['ratio_old_over_new']:>7.1f}x ({r['old_worst_shape']})"
        )
        name = r["pattern"] if len(r["pattern"]) <= 22 else r["pattern"][:19] + "..."
        lines.append(
            f"  {name:<22} {'yes' if r['refused_at_add'] else 'no':>7} {r['new_ms_median']:>7.2f} "
            f"{r['new_ms_p90']:>6.2f}   {old}"
        )
    lines.append("  (+: one more step of the prompt took the old regex past its budget)")
    first = result["growth"][0]["ms"]
    lines.append(
        "  growth of a*a*a*a*a*a*z: " + ", ".join(f"{g['chars']} ch {g['ms'] / first:.1f}x" for g in result["growth"])
    )
    lines.append("  a full server against 1,000 ch (patterns x characters each: median and fastest ms):")
    for s in result["full_server"]:
        note = (
            ""
            if s["within_limits"]
            else f"  (over the {moderation.MAX_BANNED_CHARS:,}-character cap: stored before it)"
        )
        lines.append(f"    {s['patterns']:>4} x {s['chars_each']:<3} {s['ms']:>6.2f} {s['ms_min']:>6.2f} ms{note}")
    lines.append(
        "  folding a prompt: " + ", ".join(f"{f['chars']} ch {f['us_per_char']:.2f} us/ch" for f in result["folding"])
    )
    worst = max(r["new_ms_median"] for r in result["worst"])
    verdict = "within" if worst < GOAL_MS else "OVER"
    lines.append(f"  slowest worst-pattern check (median): {worst:.2f} ms, {verdict} the {GOAL_MS:g} ms goal")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.blocklist", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, a shorter budget for the old regex")
    parser.add_argument("--old-budget", type=float, default=1.0, help="seconds one old-regex check may take")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "blocklist.json")
    args = parser.parse_args(argv)
    result = run(args.quick, args.old_budget)
    print(table(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
