"""Control of a fake running in another process: a small JSON RPC at /_fake and its client.

`RemoteFakeDiscord(control_url)` offers the same scenario API as `FakeDiscord`, every method async (readers
included). Waits that take a predicate run the predicate here, re-fetching after each state change there.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from tests.support.actions import Upload
from tests.support.rest import Fault
from tests.support.state import (
    Attachment,
    Channel,
    Command,
    FilePart,
    Guild,
    Interaction,
    Member,
    Message,
    Overwrite,
    RestCall,
    Role,
    User,
)

if TYPE_CHECKING:
    from tests.support.core import FakeCore

#: Scenario methods callable over RPC (coroutines are awaited there; the rest are plain calls).
RPC_METHODS = frozenset(
    {
        "create_guild",
        "create_role",
        "set_role_permissions",
        "create_channel",
        "set_overwrite",
        "create_member",
        "set_member_roles",
        "set_upload_limit",
        "default_scene",
        "advance_clock",
        "reconnect_gateway",
        "drop_gateway",
        "slash",
        "autocomplete",
        "click",
        "select",
        "submit_modal",
        "react",
        "unreact",
        "post_message",
        "wait_for_bot",
        "wait_for_commands",
        "wait_for_ack",
        "fail_next",
        "clear_faults",
        "messages",
        "message",
        "interaction",
        "commands",
        "calls_to",
        "gateway_stats",
        "take_errors",
        "assert_clean",
        "upload",
        "urls",
        "find_command",
    }
)

_ERRORS: dict[str, type[Exception]] = {
    e.__name__: e
    for e in (LookupError, KeyError, ValueError, TypeError, PermissionError, TimeoutError, AssertionError, RuntimeError)
}


def _types() -> dict[str, type]:
    from tests.support.scenario import Scene

    classes = (
        User,
        Role,
        Overwrite,
        Channel,
        Guild,
        Member,
        Attachment,
        Message,
        Command,
        Interaction,
        FilePart,
        RestCall,
        Fault,
        Upload,
        Scene,
    )
    return {c.__name__: c for c in classes}


def encode(obj: Any) -> Any:
    """JSON-safe form of scenario values: dataclasses tagged by class name, bytes as base64."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {"__dc__": type(obj).__name__, **{f.name: encode(getattr(obj, f.name)) for f in dataclasses.fields(obj)}}
    if isinstance(obj, (bytes, bytearray)):
        return {"__b64__": base64.b64encode(obj).decode()}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: encode(v) for k, v in obj.items()}
        return {"__map__": [[encode(k), encode(v)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return [encode(v) for v in obj]
    return obj


def decode(obj: Any) -> Any:
    if isinstance(obj, list):
        return [decode(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__b64__" in obj:
        return base64.b64decode(obj["__b64__"])
    if "__map__" in obj:
        return {decode(k): decode(v) for k, v in obj["__map__"]}
    if "__dc__" in obj:
        cls = _types()[obj["__dc__"]]
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: decode(v) for k, v in obj.items() if k in names})
    return {k: decode(v) for k, v in obj.items()}


def add_routes(app: web.Application, core: FakeCore) -> None:
    async def rpc(request: web.Request) -> web.Response:
        body = await request.json()
        name = body["method"]
        if name == "wait_change":
            version, timeout = body["args"]
            if core.world.version == version:
                with contextlib.suppress(TimeoutError):
                    await core.world.wait_change(timeout)
            return web.json_response({"result": core.world.version})
        if name not in RPC_METHODS:
            return web.json_response({"error": {"type": "LookupError", "message": f"no RPC method {name!r}"}})
        try:
            result = getattr(core, name)(*decode(body.get("args", [])), **decode(body.get("kwargs", {})))
            if asyncio.iscoroutine(result):
                result = await result
        except Exception as exc:  # sent back and re-raised in the client's process
            return web.json_response({"error": {"type": type(exc).__name__, "message": str(exc)}})
        return web.json_response({"result": encode(result)})

    async def urls(request: web.Request) -> web.Response:
        return web.json_response(core.urls())

    app.router.add_post("/_fake/rpc", rpc)
    app.router.add_get("/_fake/urls", urls)


class RemoteFakeDiscord:
    """Client for a fake in another process (`python -m tests.support.fake_discord`)."""

    def __init__(self, control_url: str) -> None:
        self.control_url = control_url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> RemoteFakeDiscord:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        body = {"method": method, "args": encode(list(args)), "kwargs": encode(kwargs)}
        async with self._session.post(self.control_url + "/rpc", json=body) as response:
            answer = await response.json()
        if "error" in answer:
            raise _ERRORS.get(answer["error"]["type"], RuntimeError)(answer["error"]["message"])
        return decode(answer["result"])

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name in RPC_METHODS:
            return functools.partial(self.call, name)
        raise AttributeError(name)

    async def wait_for(
        self, fetch: Callable[[], Any], check: Callable[[Any], Any], *, timeout: float = 5.0, what: str = "condition"
    ) -> Any:
        """Await `fetch()` (a coroutine function), apply `check`, repeat after each remote change."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        version = await self.call("wait_change", -1, 0)
        while True:
            result = check(await fetch())
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
            version = await self.call("wait_change", version, min(remaining, 2.0))

    async def wait_for_message(
        self, channel_id: int, predicate: Callable[[Message], Any] | None = None, timeout: float = 5.0
    ) -> Message:
        def check(messages: list[Message]) -> Message | None:
            return next((m for m in messages if predicate is None or predicate(m)), None)

        return await self.wait_for(
            lambda: self.call("messages", channel_id), check, timeout=timeout, what=f"a message in channel {channel_id}"
        )

    async def wait_for_call(
        self, method: str, route: str, predicate: Callable[[RestCall], Any] | None = None, *, timeout: float = 5.0
    ) -> RestCall:
        def check(calls: list[RestCall]) -> RestCall | None:
            return next((c for c in calls if c.status and (predicate is None or predicate(c))), None)

        return await self.wait_for(
            lambda: self.call("calls_to", method, route), check, timeout=timeout, what=f"{method} {route}"
        )
