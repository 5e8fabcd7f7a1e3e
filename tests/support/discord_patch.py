"""Point discord.py at the fake Discord: one function, for tests and for bot/worker processes started by tests.

`discord.http` imports `discord.gateway` at its top, so both must be loaded before patching; `Route.BASE` is read
at request time (REST, `SyncWebhook` and the async webhook adapters all build URLs from it), and
`DiscordWebSocket.DEFAULT_GATEWAY` when connecting. Checked on discord.py 2.7.1.

Self-contained (discord.py and yarl only) so that product code may import it, or copy these few lines:

    # in the bot/worker launcher, before any Client or SyncWebhook is used
    if os.environ.get("IMAGINE_DISCORD_API_BASE"):
        from tests.support import discord_patch
        discord_patch.apply_from_env()
"""

from __future__ import annotations

import os

API_BASE_ENV = "IMAGINE_DISCORD_API_BASE"  # e.g. http://127.0.0.1:PORT/api/v10
GATEWAY_ENV = "IMAGINE_DISCORD_GATEWAY"  # e.g. ws://127.0.0.1:PORT/gateway

_ORIGINAL: dict[str, object] = {}


def apply(api_base: str, gateway_url: str) -> None:
    """Send discord.py's REST calls to `api_base` and its gateway connection to `gateway_url`."""
    import discord.gateway
    import discord.http
    import yarl

    _ORIGINAL.setdefault("base", discord.http.Route.BASE)
    _ORIGINAL.setdefault("gateway", discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    discord.http.Route.BASE = api_base.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


def apply_from_env(environ: dict[str, str] | None = None) -> bool:
    """Apply from IMAGINE_DISCORD_API_BASE / IMAGINE_DISCORD_GATEWAY; returns False (no-op) when unset."""
    env = os.environ if environ is None else environ
    base = env.get(API_BASE_ENV)
    if not base:
        return False
    gateway = env.get(GATEWAY_ENV) or base.split("/api/")[0].replace("http", "ws", 1) + "/gateway"
    apply(base, gateway)
    return True


def env_for(api_base: str, gateway_url: str) -> dict[str, str]:
    """The environment variables a child process needs (merge into `os.environ` copy for subprocess)."""
    return {API_BASE_ENV: api_base, GATEWAY_ENV: gateway_url}


def restore() -> None:
    """Undo `apply` (tests that patch in-process restore at teardown)."""
    import discord.gateway
    import discord.http

    if "base" in _ORIGINAL:
        discord.http.Route.BASE = _ORIGINAL["base"]  # type: ignore[assignment]
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = _ORIGINAL["gateway"]  # type: ignore[assignment]


def _main() -> None:
    """`python -m tests.support.discord_patch MODULE [ARGS...]`: patch from the environment, then run MODULE as
    `python -m MODULE ARGS...` would (for processes whose code does not call `apply_from_env` itself)."""
    import runpy
    import sys

    if len(sys.argv) < 2:
        raise SystemExit("usage: python -m tests.support.discord_patch MODULE [ARGS...]")
    if not apply_from_env():
        raise SystemExit(f"{API_BASE_ENV} is not set")
    module = sys.argv[1]
    sys.argv = [module, *sys.argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    _main()
