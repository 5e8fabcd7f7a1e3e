"""Where Redis's memory goes: the server's totals (INFO) and the largest key families, for `imagine status` and the
bot's `/metrics`.

A family is a key name with its ids replaced (`imagine:job:<id>`, `imagine:member:<n>:<n>:active`). Sizing every
key would walk the whole database, so `families` samples at most `SAMPLE` keys with SCAN and `MEMORY USAGE` and
scales the sums by the database's size: exact below `SAMPLE` keys, an estimate above.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import redis

#: Keys sized per report at most.
SAMPLE = 20_000
_HEX_ID = re.compile(r"(?<![0-9a-zA-Z])[0-9a-f]{16,64}(?![0-9a-zA-Z])")
_NUMBER = re.compile(r"(?<=:)\d+(?=:|$)")


@dataclass(frozen=True)
class Memory:
    used: int
    peak: int
    maxmemory: int  # 0: no limit
    policy: str


@dataclass(frozen=True)
class Family:
    name: str
    keys: int
    bytes: int


def family(key: str) -> str:
    """The family of a key name: ids and numbers replaced by placeholders."""
    return _NUMBER.sub("<n>", _HEX_ID.sub("<id>", key))


def memory(conn: redis.Redis) -> Memory:
    info: dict[str, Any] = conn.info("memory")
    return Memory(
        used=int(info.get("used_memory", 0)),
        peak=int(info.get("used_memory_peak", 0)),
        maxmemory=int(info.get("maxmemory", 0)),
        policy=str(info.get("maxmemory_policy", "")),
    )


def families(conn: redis.Redis, top: int = 10, sample: int = SAMPLE) -> list[Family]:
    """The `top` key families by bytes (scaled up from a sample when the database holds more than `sample`)."""
    found: dict[str, list[int]] = {}
    seen = 0
    batch: list[Any] = []

    def size(names: list[Any]) -> None:
        with conn.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.memory_usage(name, samples=0)
            for name, used in zip(names, pipe.execute(), strict=True):
                text = name.decode() if isinstance(name, bytes) else str(name)
                entry = found.setdefault(family(text), [0, 0])
                entry[0] += 1
                entry[1] += int(used or 0)

    for name in conn.scan_iter(count=1000):
        batch.append(name)
        seen += 1
        if len(batch) >= 500:
            size(batch)
            batch = []
        if seen >= sample:
            break
    if batch:
        size(batch)
    total = int(conn.dbsize())
    scale = total / seen if seen and total > seen else 1.0
    out = [Family(name, round(n * scale), round(b * scale)) for name, (n, b) in found.items()]
    return sorted(out, key=lambda f: -f.bytes)[:top]


class Cached:
    """`families` at most once per `every_s` (a scrape every 15 s must not walk the keys each time)."""

    def __init__(self, every_s: float = 300.0) -> None:
        self.every_s = every_s
        self._at = 0.0
        self._value: list[Family] = []

    def families(self, conn: redis.Redis) -> list[Family]:
        if time.monotonic() - self._at >= self.every_s or not self._at:
            self._value = families(conn)
            self._at = time.monotonic()
        return self._value


def size(n: float) -> str:
    """Bytes as a person reads them."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def render(conn: redis.Redis, top: int = 8) -> list[str]:
    """The lines `imagine status` prints about memory."""
    mem = memory(conn)
    cap = f"of {size(mem.maxmemory)} ({mem.policy})" if mem.maxmemory else f"(no maxmemory; {mem.policy})"
    lines = [f"redis memory: {size(mem.used)} {cap}, peak {size(mem.peak)}", "largest key families:"]
    for fam in families(conn, top):
        lines.append(f"  {fam.name}: {fam.keys:,} keys, {size(fam.bytes)}")
    return lines
