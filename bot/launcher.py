"""Start the bot: open Redis (or the embedded server), point discord.py where settings say, run until stopped.

`main()` owns every long-lived resource and hands it to the bot (no module-level bot). SIGTERM closes the bot
cleanly, like Ctrl-C, so `imagine up` and service managers can stop it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from imagine import redis as imagine_redis
from imagine.settings import Settings, redact_url

log = logging.getLogger(__name__)


def point_discord_at(api_base: str) -> None:
    """Send discord.py's REST calls to `api_base` and derive the gateway URL from it (tests' fake Discord)."""
    import discord.gateway
    import discord.http
    import yarl

    base = api_base.rstrip("/")
    gateway = base.split("/api/")[0].replace("http", "ws", 1) + "/gateway"
    discord.http.Route.BASE = base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)
    log.warning("talking to a Discord at %s (IMAGINE_DISCORD_API_BASE), not discord.com", base)


async def main(settings: Settings, url: str, *, sync_global: bool = False) -> None:
    from bot import metrics as bot_metrics
    from bot.client import ImagineBot

    if settings.discord_api_base:
        point_discord_at(settings.discord_api_base)
    token = settings.discord_token.get_secret_value() if settings.discord_token else ""
    if not token:
        raise SystemExit("imagine bot: DISCORD_TOKEN is not set (see README: creating the Discord application)")
    queue_conn = imagine_redis.client(url)
    async with imagine_redis.async_client(url) as redis_client:  # reconnects with backoff through a restart
        await imagine_redis.wait_until_up(redis_client)  # Redis may be restarting as the bot starts
        try:
            await asyncio.to_thread(imagine_redis.check_server, queue_conn)
        except redis.ConnectionError as exc:
            log.warning("could not check the Redis server's settings: %s", exc)
        bot = ImagineBot(settings, redis_client, queue_conn, sync_global=sync_global)
        metrics = await bot_metrics.start(settings, queue_conn)  # the deployment's /metrics (bot/metrics.py)
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        for sig in (signal.SIGTERM,):
            loop.add_signal_handler(sig, stopping.set)
        async with bot:
            runner = asyncio.create_task(bot.start(token), name="discord-client")
            stopper = asyncio.create_task(stopping.wait(), name="stop-signal")
            done, _ = await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if stopper in done:
                log.info("stopping the bot")
            await bot.close()
            stopper.cancel()
            if runner in done:
                runner.result()  # a failed login raises here
            else:
                runner.cancel()
        if metrics is not None:
            await metrics.close()
    queue_conn.close()


@contextmanager
def redis_url(settings: Settings) -> Iterator[str]:
    with imagine_redis.connect(settings) as connection:
        log.info("bot using Redis at %s", redact_url(connection.url))
        yield connection.url


def run(settings: Settings, *, sync_global: bool = False) -> int:
    with redis_url(settings) as url:
        try:
            asyncio.run(main(settings, url, sync_global=sync_global))
        except KeyboardInterrupt:
            log.info("interrupted")
    return 0
