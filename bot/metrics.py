"""The bot's Prometheus `/metrics`: the whole deployment as Redis sees it, served on the bot's own event loop.

Workers serve their own metrics (duration histograms, GPU memory); this endpoint is the one place to scrape for
the deployment: queue depth per queue and per server, the oldest waiting job, live workers, job counts by model,
kind and outcome and failures by cause, as every worker counts them in Redis (`imagine.status`), and Redis's
memory with its largest key families (`imagine.memory`). Each scrape
reads Redis in a thread (`asyncio.to_thread`), so the gateway is never blocked. Torch-free, like all of `bot/`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

import redis
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from imagine import memory, status
from imagine.settings import Settings

log = logging.getLogger(__name__)


class Deployment(Collector):
    """Reads the deployment's state from Redis at each scrape."""

    def __init__(self, conn: redis.Redis) -> None:
        self.conn = conn
        self.families = memory.Cached()

    def collect(self) -> Iterable[Metric]:
        waiting = GaugeMetricFamily(
            "imagine_queue_waiting",
            "Jobs waiting, by queue and server (guild id; none: the CLI)",
            labels=["queue", "guild"],
        )
        running = GaugeMetricFamily("imagine_queue_running", "Jobs running, by queue", labels=["queue"])
        oldest = GaugeMetricFamily(
            "imagine_queue_oldest_wait_seconds", "How long the longest-waiting job has waited", labels=["queue"]
        )
        for depth in status.queues(self.conn):
            running.add_metric([depth.name], depth.running)
            oldest.add_metric([depth.name], depth.oldest_wait_s or 0.0)
            for guild, count in depth.by_guild.items():
                waiting.add_metric([depth.name, guild], count)
        workers = GaugeMetricFamily("imagine_workers", "Live workers, by state", labels=["state"])
        up = GaugeMetricFamily("imagine_worker_up", "A live worker, with its device", labels=["worker", "device"])
        states: dict[str, int] = {}
        for view in status.workers(self.conn):
            states[view.state] = states.get(view.state, 0) + 1
            up.add_metric([view.name, str(view.info.get("device", "unknown"))], 1)
        for state, count in states.items():
            workers.add_metric([state], count)
        jobs = CounterMetricFamily(
            "imagine_deployment_jobs", "Job attempts finished by all workers", labels=["model", "kind", "outcome"]
        )
        causes = CounterMetricFamily("imagine_deployment_failures", "Failed attempts by cause", labels=["cause"])
        for field, count in status.stats(self.conn).items():
            parts = field.split("|")
            if parts[0] == "cause" and len(parts) == 2:
                causes.add_metric([parts[1]], count)
            elif len(parts) == 3:
                outcome, kind, model = parts
                jobs.add_metric([model, kind, outcome], count)
        mem = memory.memory(self.conn)
        used = GaugeMetricFamily("imagine_redis_used_bytes", "Memory Redis uses")
        used.add_metric([], mem.used)
        limit = GaugeMetricFamily("imagine_redis_maxmemory_bytes", "Redis's maxmemory (0: none)")
        limit.add_metric([], mem.maxmemory)
        family_bytes = GaugeMetricFamily(
            "imagine_redis_family_bytes", "Bytes of the largest key families (sampled every 5 min)", labels=["family"]
        )
        family_keys = GaugeMetricFamily("imagine_redis_family_keys", "Keys of those families", labels=["family"])
        for fam in self.families.families(self.conn):
            family_bytes.add_metric([fam.name], fam.bytes)
            family_keys.add_metric([fam.name], fam.keys)
        yield from (waiting, running, oldest, workers, up, jobs, causes, used, limit, family_bytes, family_keys)


class MetricsServer:
    """`GET /metrics` on an aiohttp server in the bot's loop; `close()` stops it."""

    def __init__(self, conn: redis.Redis) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(Deployment(conn))
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self, host: str, port: int) -> int:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        server: Any = site._server  # the bound port, when 0 asked for any
        self.port = int(server.sockets[0].getsockname()[1]) if server is not None and server.sockets else port
        log.info("bot /metrics on http://%s:%d/metrics", host, self.port)
        return self.port

    async def _metrics(self, request: web.Request) -> web.Response:
        body = await asyncio.to_thread(generate_latest, self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


async def start(settings: Settings, conn: redis.Redis) -> MetricsServer | None:
    """Serve `/metrics` on `IMAGINE_BOT_METRICS_PORT` (0: off); a port in use is logged, not fatal."""
    if not settings.bot_metrics_port:
        return None
    server = MetricsServer(conn)
    try:
        await server.start(settings.metrics_host, settings.bot_metrics_port)
    except OSError as exc:
        log.warning("bot /metrics not served on %s:%d: %s", settings.metrics_host, settings.bot_metrics_port, exc)
        return None
    return server
