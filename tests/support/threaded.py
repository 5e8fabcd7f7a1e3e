"""Run a FakeDiscord on its own event loop in a background thread, for synchronous code (scripts, sync tests).

with FakeDiscordThread() as fake:           # fake proxies every FakeDiscord method, made blocking
    scene = fake.default_scene()
    fake.fail_next("/channels/{channel_id}/messages")
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable
from typing import Any

from tests.support.scenario import FakeDiscord


class FakeDiscordThread:
    """Blocking proxy: coroutine methods run on the fake's loop and are waited for; plain methods too."""

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-discord", daemon=True)
        self.fake: FakeDiscord | None = None

    def start(self) -> FakeDiscordThread:
        self._thread.start()

        async def make() -> FakeDiscord:
            fake = FakeDiscord(**self._kwargs)
            await fake.start()
            return fake

        self.fake = asyncio.run_coroutine_threadsafe(make(), self._loop).result(30)
        return self

    def close(self) -> None:
        if self.fake is not None:
            asyncio.run_coroutine_threadsafe(self.fake.close(), self._loop).result(30)
            self.fake = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, fn: Callable[..., Any], *args: Any, timeout: float | None = 60, **kwargs: Any) -> Any:
        """Call `fn(*args, **kwargs)` on the fake's loop (awaiting it if it is a coroutine) and return the result."""

        async def call() -> Any:
            result = fn(*args, **kwargs)
            return await result if inspect.isawaitable(result) else result

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(timeout)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or self.fake is None:
            raise AttributeError(name)
        attr = getattr(self.fake, name)
        if not callable(attr):
            return attr
        return lambda *args, **kwargs: self.run(attr, *args, **kwargs)
