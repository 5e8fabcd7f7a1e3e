"""What the deployment is doing, read from Redis: queues (per server), workers (model, device), counts, failures.

Torch-free and Discord-free: `imagine status` prints it, and the bot's `/metrics` (`bot.metrics`) exports the same
numbers. Everything is read from RQ's keys and from what workers publish (`imagine:worker:<name>`,
`imagine:stats`, `imagine:failures`); nothing here writes.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import redis
from rq import Queue, Worker
from rq.serializers import JSONSerializer

from imagine import fair, keys, memory

log = logging.getLogger(__name__)


@dataclass
class QueueDepth:
    """One queue: waiting and running jobs, waiting ones by server ("none" for the CLI), the oldest wait."""

    name: str
    waiting: int
    running: int
    by_guild: dict[str, int] = field(default_factory=dict)
    oldest_wait_s: float | None = None


@dataclass
class WorkerView:
    name: str
    state: str
    queues: list[str]
    info: dict[str, Any]


def queue_names(conn: redis.Redis) -> list[str]:
    """Our RQ queues (names start with `imagine:`), the image queue always among them."""
    names = {q.name for q in Queue.all(connection=conn, serializer=JSONSerializer) if q.name.startswith(keys.PREFIX)}
    names.add(keys.IMAGE_QUEUE)
    return sorted(names)


def queues(conn: redis.Redis) -> list[QueueDepth]:
    """Each queue's depth from the fair structure's own counters (`imagine.fair`): no walk over waiting jobs."""
    depths = []
    now = time.time()
    for name in queue_names(conn):
        queue = Queue(name, connection=conn, serializer=JSONSerializer)
        with conn.pipeline(transaction=False) as pipe:
            pipe.hgetall(fair.prefix(name) + "waiting")
            pipe.zrange(fair.prefix(name) + "since", 0, 0, withscores=True)
            per_guild, oldest = pipe.execute()
        by_guild = {("none" if _text(g) == "0" else _text(g)): int(n) for g, n in per_guild.items() if int(n) > 0}
        depths.append(
            QueueDepth(
                name=name,
                waiting=fair.count(conn, name),
                running=queue.started_job_registry.count,
                by_guild=by_guild,
                oldest_wait_s=max(0.0, now - float(oldest[0][1])) if oldest else None,
            )
        )
    return depths


def workers(conn: redis.Redis) -> list[WorkerView]:
    """Live RQ workers with what each published about itself (device, dtype, resident models)."""
    views = []
    for worker in Worker.all(connection=conn):
        raw = conn.hgetall(keys.worker_info(worker.name))
        info = {_text(k): _loads(v) for k, v in raw.items()}
        views.append(WorkerView(worker.name, str(worker.get_state()), worker.queue_names(), info))
    return sorted(views, key=lambda w: w.name)


def stats(conn: redis.Redis) -> dict[str, int]:
    """Deployment-wide counts: `<outcome>|<kind>|<model>` and `cause|<cause>`."""
    return {_text(k): int(v) for k, v in conn.hgetall(keys.STATS).items()}


def failures(conn: redis.Redis, count: int = 10) -> list[dict[str, Any]]:
    """The latest failures, newest first."""
    found = []
    for raw in conn.lrange(keys.FAILURES, 0, count - 1):
        try:
            found.append(json.loads(raw))
        except ValueError:
            continue
    return found


def render(conn: redis.Redis, failures_shown: int = 10) -> str:
    """The text `imagine status` prints."""
    lines = ["queues:"]
    for depth in queues(conn):
        oldest = f", oldest waiting {depth.oldest_wait_s:.0f} s" if depth.oldest_wait_s is not None else ""
        lines.append(f"  {depth.name}: {depth.waiting} waiting, {depth.running} running{oldest}")
        if depth.by_guild:
            servers = ", ".join(f"{guild}: {n}" for guild, n in sorted(depth.by_guild.items(), key=lambda i: -i[1]))
            lines.append(f"    by server: {servers}")
    found = workers(conn)
    lines.append(f"workers: {len(found)}")
    for view in found:
        info = view.info
        models = ", ".join(info.get("models") or []) or "none loaded"
        if info.get("offers"):
            models += f" (offers {', '.join(info['offers'])})"
        where = f"{info.get('device', '?')} {info.get('dtype', '')}".strip() + _memory(info.get("memory"))
        port = f", metrics :{info['metrics_port']}" if info.get("metrics_port") else ""
        lines.append(f"  {view.name}: {view.state} on {', '.join(view.queues)}; {where}; models: {models}{port}")
    counts = stats(conn)
    done = sum(v for k, v in counts.items() if k.startswith("done|"))
    failed = sum(v for k, v in counts.items() if k.startswith("failed|"))
    lines.append(f"jobs: {done} done, {failed} failed")
    lines.extend(memory.render(conn))
    recent = failures(conn, failures_shown)
    lines.append(f"last failures: {len(recent) or 'none'}")
    for item in recent:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(item.get("ts", 0))))
        again = " (retrying)" if item.get("retrying") else ""
        lines.append(
            f"  {when} job {item.get('job_id')} {item.get('model')} {item.get('kind')}: {item.get('cause')}{again}"
            f" - {item.get('error')} [{item.get('worker')}]"
        )
    return "\n".join(lines)


def _memory(memory: Any) -> str:
    """`, 5.2/80.0 GiB used` for a card, `, 1.3 GiB resident` for a CPU worker, nothing when unknown."""
    if not isinstance(memory, dict):
        return ""
    gib = 2**30
    if isinstance(memory.get("used"), int) and isinstance(memory.get("total"), int):
        return f", {memory['used'] / gib:.1f}/{memory['total'] / gib:.1f} GiB used"
    if isinstance(memory.get("rss"), int):
        return f", {memory['rss'] / gib:.1f} GiB resident"
    return ""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _loads(value: Any) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return _text(value)
