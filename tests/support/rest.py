"""The REST pipeline: route matching, body parsing, faults, auth, spec validation, recording, error shapes.

Every request under /api/v10 goes through `handle_api`, in this order: match a route -> parse the body (JSON or
multipart with `payload_json`) -> record it -> injected fault, if one matches -> auth -> OpenAPI validation ->
the route's handler. Handlers raise `ApiError` for Discord's error answers and return `(status, json)`.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from aiohttp import BodyPartReader, web

from tests.support import spec
from tests.support.state import FilePart, RestCall

if TYPE_CHECKING:
    from tests.support.core import FakeCore
    from tests.support.state import World

log = logging.getLogger(__name__)

Reply = tuple[int, Any]
Handler = Callable[["Ctx"], Awaitable[Reply]]


class ApiError(Exception):
    """An error answer in Discord's shape: `{"code": ..., "message": ..., "errors": ...}`."""

    def __init__(self, status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status, self.code, self.message, self.errors = status, code, message, errors

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return body


def form_error(message: str, lines: list[str] | None = None) -> ApiError:
    """400 Invalid Form Body (50035), with our readable reasons under `errors._errors`."""
    errors = {"_errors": [{"code": "INVALID", "message": line} for line in (lines or [message])]}
    return ApiError(400, 50035, "Invalid Form Body", errors)


@dataclass
class Route:
    method: str
    template: str
    handler: Handler
    auth: str  # "bot": Authorization: Bot <token>; "token": token in the path (a bot header is optional)
    parts: list[str] = field(default_factory=list)

    def match(self, segments: list[str]) -> dict[str, str] | None:
        if len(segments) != len(self.parts):
            return None
        params: dict[str, str] = {}
        for want, got in zip(self.parts, segments, strict=True):
            if want.startswith("{"):
                params[want[1:-1]] = got
            elif want != got:
                return None
        return params


ROUTES: list[Route] = []


def route(method: str, template: str, *, auth: str = "bot") -> Callable[[Handler], Handler]:
    """Register a handler for a spec path template (the same spelling as discord.py's `Route`)."""

    def register(handler: Handler) -> Handler:
        ROUTES.append(Route(method, template, handler, auth, template.strip("/").split("/")))
        # literal segments win over parameters (`@original` before `{message_id}`)
        ROUTES.sort(key=lambda r: -sum(1 for p in r.parts if not p.startswith("{")))
        return handler

    return register


@dataclass
class Fault:
    """A canned failure for the next `remaining` requests that match `method` and `route`.

    `route` is a spec template (`/channels/{channel_id}/messages`) or a glob on the real path (`/webhooks/*`).
    `status` None with a `delay` means: answer normally, but late (a timeout from the client's side).
    """

    route: str | None
    method: str | None
    status: int | None
    remaining: int
    retry_after: float = 0.05
    is_global: bool = False
    delay: float = 0.0
    via: bool = True
    hits: int = 0
    #: In-process only: a further test on the recorded call (its JSON body is read), e.g. "the result, not a status".
    when: Callable[[RestCall], bool] | None = None

    def matches(self, method: str, template: str | None, path: str) -> bool:
        if self.remaining <= 0 or (self.method and self.method.upper() != method):
            return False
        if self.route is None:
            return True
        if "{" in self.route:
            return self.route == template
        return fnmatch.fnmatchcase(path, self.route)


@dataclass
class Ctx:
    """One request, parsed, as handlers see it."""

    core: FakeCore
    method: str
    path: str
    template: str
    params: dict[str, str]
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    files: list[FilePart]
    call: RestCall

    @property
    def world(self) -> World:
        return self.core.world

    def snowflake(self, name: str) -> int:
        try:
            return int(self.params[name])
        except ValueError:
            raise form_error(f"{name} is not a snowflake") from None


def json_response(status: int, body: Any) -> web.Response:
    """Content-Type exactly `application/json`: discord.py parses JSON only then (no charset suffix)."""
    if status == 204 or body is None:
        return web.Response(status=204)
    return web.Response(status=status, body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})


async def _read_body(request: web.Request) -> tuple[Any, list[FilePart]]:
    ctype = request.content_type
    if not request.can_read_body:
        return None, []
    if ctype == "multipart/form-data":
        payload: Any = None
        files: list[FilePart] = []
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise form_error("nested multipart bodies are not something Discord takes")
            data = await part.read()
            name = part.name or ""
            if name == "payload_json":
                try:
                    payload = json.loads(bytes(data))
                except ValueError:
                    raise ApiError(400, 50109, "The request body contains invalid JSON.") from None
            elif part.filename is not None:
                files.append(FilePart(name, part.filename, part.headers.get("Content-Type", ""), bytes(data)))
            else:
                raise form_error(f"unexpected multipart field {name!r} (Discord takes payload_json and files[n])")
        return payload, files
    raw = await request.read()
    if not raw:
        return None, []
    if ctype != "application/json":
        raise ApiError(400, 50035, f"Unsupported Content-Type {ctype!r}")
    try:
        return json.loads(raw), []
    except ValueError:
        raise ApiError(400, 50109, "The request body contains invalid JSON.") from None


async def _fault_response(fault: Fault) -> web.Response | None:
    fault.remaining -= 1
    fault.hits += 1
    if fault.delay:
        await asyncio.sleep(fault.delay)
    if fault.status is None:
        return None
    if fault.status == 429:
        headers = {"Content-Type": "application/json", "Retry-After": str(max(1, round(fault.retry_after)))}
        headers["X-RateLimit-Scope"] = "global" if fault.is_global else "user"
        if fault.is_global:
            headers["X-RateLimit-Global"] = "true"
        if fault.via:
            headers["Via"] = "1.1 google"
        body = {"message": "You are being rate limited.", "retry_after": fault.retry_after, "global": fault.is_global}
        return web.Response(status=429, body=json.dumps(body).encode(), headers=headers)
    body = {"message": f"{fault.status}: Server Error", "code": 0}
    return json_response(fault.status, body)


def match_route(method: str, raw_path: str) -> tuple[Route | None, dict[str, str]]:
    segments = [unquote(s) for s in raw_path.strip("/").split("/")]
    for r in ROUTES:
        if r.method == method:
            params = r.match(segments)
            if params is not None:
                return r, params
    return None, {}


async def handle_api(core: FakeCore, request: web.Request) -> web.Response:
    world = core.world
    method = request.method.upper()
    raw_path = request.raw_path.split("?", 1)[0][len(spec.API_PREFIX) :] or "/"
    matched, params = match_route(method, raw_path)
    call = RestCall(
        method,
        unquote(raw_path),
        matched.template if matched else None,
        dict(request.query),
        None,
        [],
        False,
        world.clock.now(),
    )
    world.calls.append(call)
    try:
        call.json, call.files = await _read_body(request)
        for fault in core.faults:
            if fault.matches(method, call.route, call.path) and (fault.when is None or fault.when(call)):
                response = await _fault_response(fault)
                if response is not None:
                    call.status = response.status
                    world.changed()
                    return response
                break
        auth = request.headers.get("Authorization")
        call.authorized = auth == f"Bot {world.token}"
        if matched is None:
            world.error(f"no route in the fake for {method} {call.path}")
            raise ApiError(404, 0, "404: Not Found")
        if (matched.auth == "bot" and not call.authorized) or (auth is not None and not call.authorized):
            world.error(f"401 for {method} {call.path}: Authorization header {auth!r}")
            raise ApiError(401, 0, "401: Unauthorized")
        if core.validate:
            problems = spec.validate(method, call.path, query=request.query, headers=request.headers, body=call.json)
            if problems:
                world.error(f"spec violation in {method} {call.path}: " + "; ".join(problems))
                raise form_error("Invalid Form Body", problems)
        ctx = Ctx(
            core,
            method,
            call.path,
            matched.template,
            params,
            dict(request.query),
            dict(request.headers),
            call.json,
            call.files,
            call,
        )
        status, body = await matched.handler(ctx)
    except ApiError as exc:
        status, body = exc.status, exc.body()
    except Exception as exc:  # a bug in the fake: answer 500 and make the test fail loudly
        log.exception("fake discord crashed on %s %s", method, call.path)
        world.error(f"fake discord crashed on {method} {call.path}: {exc!r}")
        status, body = 500, {"message": "500: Internal Server Error", "code": 0}
    call.status, call.response = status, body
    world.changed()
    return json_response(status, body)
