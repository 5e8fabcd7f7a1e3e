"""Validation of REST requests against Discord's official OpenAPI description.

The spec is vendored next to this module (`discord-openapi.json`, MIT, from discord/discord-api-spec commit
74fda0f; licence in `discord-openapi.LICENSE`) so a fresh clone needs nothing from outside.

Two deliberate departures from the raw file, both to match what Discord itself accepts:
- a snowflake may be an integer as well as a digit string (discord.py sends `attachments[].id` and
  `message_reference.message_id` as integers, and Discord takes them);
- multipart bodies are validated by their `payload_json` part against the operation's JSON schema (the spec
  describes the multipart form as if each field were a form field, which is not what clients send).

The meta-validation of the spec itself (about 4 s in openapi-spec-validator) is skipped: the file is Discord's
own and vendored verbatim, so checking it on every test run buys nothing.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SPEC_PATH = Path(__file__).with_name("discord-openapi.json")
HOST_URL = "https://discord.com"
API_PREFIX = "/api/v10"

_lock = threading.Lock()
_openapi: Any = None
_templates: list[tuple[str, str]] | None = None


def _load_dict() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    schemas = data["components"]["schemas"]
    original = schemas["SnowflakeType"]
    schemas["SnowflakeType"] = {
        "anyOf": [
            {"type": "string", "pattern": original.get("pattern", "^(0|[1-9][0-9]*)$")},
            {"type": "integer", "minimum": 0},
        ],
        "format": "snowflake",
    }
    return data


def openapi() -> Any:
    """The loaded spec, built once per process (thread-safe, lazy)."""
    global _openapi, _templates
    if _openapi is None:
        with _lock:
            if _openapi is None:
                from openapi_core import Config, OpenAPI

                data = _load_dict()
                _templates = [(m.upper(), p) for p, ops in data["paths"].items() for m in ops if m != "parameters"]
                _openapi = OpenAPI.from_dict(data, config=Config(spec_validator_cls=None))
    return _openapi


def operations() -> list[tuple[str, str]]:
    """Every (METHOD, path template) the spec describes, e.g. ("GET", "/users/@me")."""
    openapi()
    assert _templates is not None
    return list(_templates)


class _Request:
    """The minimal request shape openapi-core reads (host fixed to discord.com, as the spec's server says)."""

    def __init__(
        self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str], body: bytes | None
    ) -> None:
        from openapi_core.datatypes import RequestParameters
        from werkzeug.datastructures import Headers, ImmutableMultiDict

        self.host_url = HOST_URL
        self.path = API_PREFIX + path
        self.method = method.lower()
        self.body = body
        self.content_type = "application/json" if body is not None else ""
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(list(query.items())),
            header=Headers(list(headers.items())),
            cookie=ImmutableMultiDict(),
            path={},
        )


def _leaf_errors(error: Any) -> list[Any]:
    """The innermost jsonschema errors: with oneOf/anyOf, the deepest branch is the one the client meant."""
    if not error.context:
        return [error]
    leaves: list[Any] = []
    for sub in error.context:
        leaves.extend(_leaf_errors(sub))
    return leaves


def describe(exc: BaseException) -> list[str]:
    """Readable `path: message` lines for a validation exception from openapi-core."""
    cause = exc.__cause__
    schema_errors = getattr(cause, "schema_errors", None)
    if not schema_errors:
        return [f"{type(exc).__name__}: {exc}"[:500]]
    leaves = [leaf for err in schema_errors for leaf in _leaf_errors(err)]
    deepest = max(len(leaf.absolute_path) for leaf in leaves)
    lines = []
    # a discriminator mismatch ("type: 2 is not one of [8]") only says which oneOf branch did not apply
    leaves.sort(key=lambda leaf: bool(leaf.absolute_path) and leaf.absolute_path[-1] == "type")
    for leaf in leaves:
        if len(leaf.absolute_path) == deepest:
            where = "/".join(str(p) for p in leaf.absolute_path) or "(body)"
            line = f"{where}: {leaf.message[:300]}"
            if line not in lines:
                lines.append(line)
    return lines[:5]


def validate(
    method: str,
    path: str,
    *,
    query: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    body: Any = None,
) -> list[str]:
    """Validate one request; `path` is below /api/v10, `body` the JSON value (or None). Returns problems."""
    raw = None if body is None else json.dumps(body).encode()
    request = _Request(method, path, query or {}, headers or {}, raw)
    try:
        openapi().validate_request(request)
    except Exception as exc:  # openapi-core raises many types; each is a finding, not a crash
        return describe(exc)
    return []
