"""A small synchronous client for the few Discord REST routes a worker uses: edit a message, post one, with files.

Why not `discord.SyncWebhook`: it refuses components with custom ids ("SyncWebhooks can not send interactable
components"), and a result needs its U/V/🔄 buttons; it also cannot post to a channel with the bot token, which the
15-minute fallback needs. So the worker speaks the same JSON that discord.py would, on `requests`, against the same
base URL (`https://discord.com/api/v10`, or `IMAGINE_DISCORD_API_BASE` in tests).

Retries follow Discord's rules: a 429 waits `retry_after`; 5xx answers and timeouts back off with jitter; anything
else is raised as `DiscordError` with Discord's own error code, for the caller to decide (an expired interaction
token is 401 with code 50027). Tokens never reach a log line: paths are logged with the token cut out.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Sequence
from typing import Any

import requests

log = logging.getLogger(__name__)

DEFAULT_BASE = "https://discord.com/api/v10"
USER_AGENT = "DiscordBot (https://github.com/imagine-bot/imagine-bot, 0.1)"

#: Codes meaning "this interaction token can no longer be used": post with the bot token instead.
TOKEN_GONE_CODES = {50027, 10015, 10062}
_TOKEN_IN_PATH = re.compile(r"(/webhooks/\d+/)[^/]+")

File = tuple[str, bytes]


class DiscordError(Exception):
    """Discord refused a request; `status` is the HTTP status and `code` Discord's JSON error code (0 if none)."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(f"{status} (code {code}): {message}")
        self.status = status
        self.code = code
        self.message = message

    @property
    def token_gone(self) -> bool:
        """The interaction token expired or is unknown: fall back to a channel message."""
        return self.status in (401, 404) and self.code in TOKEN_GONE_CODES


def redact(path: str) -> str:
    return _TOKEN_IN_PATH.sub(r"\1***", path)


class DiscordREST:
    """Requests against one base URL, with the bot token for routes that need it."""

    def __init__(
        self,
        base: str | None,
        bot_token: str | None,
        *,
        timeout: float = 15.0,
        attempts: int = 5,
        session: requests.Session | None = None,
    ) -> None:
        self.base = (base or DEFAULT_BASE).rstrip("/")
        self.bot_token = bot_token
        self.timeout = timeout
        self.attempts = attempts
        self.session = session or requests.Session()

    def close(self) -> None:
        self.session.close()

    # -- the routes -----------------------------------------------------------------------------------------

    def edit_original(
        self, application_id: int, token: str, payload: dict[str, Any], files: Sequence[File] = ()
    ) -> Any:
        """Edit an interaction's first response (the deferred "thinking" message)."""
        return self.request(
            "PATCH", f"/webhooks/{application_id}/{token}/messages/@original", payload, files, auth=False
        )

    def followup(self, application_id: int, token: str, payload: dict[str, Any], files: Sequence[File] = ()) -> Any:
        return self.request(
            "POST", f"/webhooks/{application_id}/{token}", payload, files, auth=False, query={"wait": "true"}
        )

    def send(self, channel_id: int, payload: dict[str, Any], files: Sequence[File] = ()) -> Any:
        return self.request("POST", f"/channels/{channel_id}/messages", payload, files)

    def edit(self, channel_id: int, message_id: int, payload: dict[str, Any], files: Sequence[File] = ()) -> Any:
        return self.request("PATCH", f"/channels/{channel_id}/messages/{message_id}", payload, files)

    def get_message(self, channel_id: int, message_id: int) -> Any:
        return self.request("GET", f"/channels/{channel_id}/messages/{message_id}")

    def download(self, url: str) -> bytes:
        """An attachment's bytes (CDN URLs need no token)."""
        response = self.session.get(url, timeout=self.timeout)
        response.raise_for_status()
        return response.content

    # -- the machinery --------------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        payload: dict[str, Any] | None = None,
        files: Sequence[File] = (),
        *,
        auth: bool = True,
        query: dict[str, str] | None = None,
    ) -> Any:
        headers = {"User-Agent": USER_AGENT}
        if auth:
            if not self.bot_token:
                raise DiscordError(401, 0, "no bot token configured (set DISCORD_TOKEN for workers)")
            headers["Authorization"] = f"Bot {self.bot_token}"
        url = self.base + path
        for attempt in range(1, self.attempts + 1):
            kwargs: dict[str, Any] = {"headers": dict(headers), "params": query, "timeout": self.timeout}
            if files:
                parts: list[tuple[str, Any]] = [("payload_json", (None, json.dumps(payload or {}), "application/json"))]
                parts += [
                    (f"files[{i}]", (name, data, "application/octet-stream")) for i, (name, data) in enumerate(files)
                ]
                kwargs["files"] = parts
            elif payload is not None:
                kwargs["data"] = json.dumps(payload)
                kwargs["headers"]["Content-Type"] = "application/json"
            try:
                response = self.session.request(method, url, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt == self.attempts:
                    raise DiscordError(0, 0, f"{type(exc).__name__} talking to Discord") from exc
                self._backoff(attempt, f"{type(exc).__name__}", method, path)
                continue
            if response.status_code == 429:
                wait = _retry_after(response)
                if attempt == self.attempts:
                    raise DiscordError(429, 0, f"still rate limited after {attempt} attempts")
                log.warning("429 on %s %s: waiting %.2f s", method, redact(path), wait)
                time.sleep(wait)
                continue
            if response.status_code >= 500 and attempt < self.attempts:
                self._backoff(attempt, str(response.status_code), method, path)
                continue
            if response.status_code >= 400:
                body = _json(response)
                code = int(body.get("code", 0)) if isinstance(body, dict) else 0
                message = body.get("message", response.reason) if isinstance(body, dict) else response.reason
                raise DiscordError(response.status_code, code, str(message))
            return _json(response) if response.status_code != 204 else None
        raise AssertionError("unreachable")

    @staticmethod
    def _backoff(attempt: int, why: str, method: str, path: str) -> None:
        wait = min(30.0, 0.5 * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5)
        log.warning("%s on %s %s: retrying in %.2f s", why, method, redact(path), wait)
        time.sleep(wait)


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {}


def _retry_after(response: requests.Response) -> float:
    body = _json(response)
    value: Any = body.get("retry_after") if isinstance(body, dict) else None
    if value is None:
        value = response.headers.get("Retry-After", 1)
    try:
        return max(0.0, min(float(value), 60.0))
    except (TypeError, ValueError):
        return 1.0
