"""The bot's view of Redis: job records, which job a message shows, members' defaults, the published models.

Async (`redis.asyncio`), so the event loop never waits on Redis. RQ itself is synchronous; `bot.jobs` calls it through
`asyncio.to_thread` with the separate synchronous client the bot is given.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from imagine import keys
from imagine.contract import JobSpec, ModelInfo
from imagine.settings import Settings

log = logging.getLogger(__name__)

#: What `/settings` may store per member, and how each is read back.
MEMBER_FIELDS: dict[str, type] = {"model": str, "aspect": str, "steps": int, "guidance": float}
#: Seconds the published model list is reused before it is read again (autocomplete runs per keystroke).
MODELS_CACHE_S = 10.0


@dataclass
class JobRecord:
    """A job as buttons need it: the spec as asked (no token), and once done the resolved spec and seeds."""

    job_id: str
    spec: JobSpec
    resolved: JobSpec | None
    seeds: list[int]
    status: str
    message_id: int | None
    channel_id: int | None
    count: int

    @property
    def best(self) -> JobSpec:
        """The resolved spec when there is one (every default filled in), else the spec as asked."""
        return self.resolved or self.spec

    @property
    def user_id(self) -> int | None:
        return self.spec.requester.user_id if self.spec.requester else None


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


class Store:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings
        self._models: dict[str, ModelInfo] = {}
        self._models_at = float("-inf")

    # -- jobs -----------------------------------------------------------------------------------------------

    async def job(self, job_id: str) -> JobRecord | None:
        try:
            raw = await self.redis.hgetall(keys.job(job_id))
        except ValueError:  # a malformed id in a custom id: no such job
            return None
        fields: dict[str, str] = {str(_text(k)): str(_text(v)) for k, v in raw.items()}
        if not fields.get("spec"):
            return None
        spec = JobSpec.model_validate_json(fields["spec"])
        resolved = JobSpec.model_validate_json(fields["resolved"]) if fields.get("resolved") else None
        seeds = json.loads(fields["seeds"]) if fields.get("seeds") else []
        return JobRecord(
            job_id=job_id,
            spec=spec,
            resolved=resolved,
            seeds=seeds,
            status=fields.get("status") or "unknown",
            message_id=int(fields["message_id"]) if fields.get("message_id") else None,
            channel_id=int(fields["channel_id"]) if fields.get("channel_id") else None,
            count=int(fields["count"]) if fields.get("count") else spec.count,
        )

    async def job_for_message(self, message_id: int) -> str | None:
        return _text(await self.redis.get(keys.message(message_id)))

    async def link_message(self, message_id: int, job_id: str) -> None:
        await self.redis.set(keys.message(message_id), job_id, ex=self.settings.record_ttl)

    async def note_shown_position(self, job_id: str, position: int) -> None:
        await self.redis.hset(keys.job(job_id), "shown", str(position))

    async def claim_edit(self, job_id: str) -> bool:
        """Take the status message's edit slot (shared with workers), so edits stay `progress_interval` apart."""
        ms = max(1, int(self.settings.progress_interval * 1000))
        return bool(await self.redis.set(keys.edit_gate(job_id), "bot", px=ms, nx=True))

    async def image(self, job_id: str, index: int) -> bytes | None:
        data = await self.redis.hget(keys.images(job_id), str(index))
        return data.encode() if isinstance(data, str) else data

    async def keep_image(self, job_id: str, index: int, data: bytes) -> None:
        """Put an image read back from Discord where a worker looks for a variation's source."""
        key = keys.images(job_id)
        await self.redis.hset(key, str(index), data)
        await self.redis.expire(key, self.settings.image_ttl)

    # -- members --------------------------------------------------------------------------------------------

    async def member_defaults(self, guild_id: int | None, user_id: int) -> dict[str, Any]:
        raw = await self.redis.hgetall(keys.member(guild_id or 0, user_id, "settings"))
        found: dict[str, Any] = {}
        for key, value in raw.items():
            name = _text(key)
            kind = MEMBER_FIELDS.get(name or "")
            if kind is not None and name is not None:
                try:
                    found[name] = kind(_text(value))
                except ValueError:
                    log.warning("ignoring a malformed default %s for member %s", name, user_id)
        return found

    async def set_member_defaults(self, guild_id: int | None, user_id: int, values: dict[str, Any]) -> None:
        key = keys.member(guild_id or 0, user_id, "settings")
        if values:
            await self.redis.hset(key, mapping={k: str(v) for k, v in values.items() if k in MEMBER_FIELDS})

    async def clear_member_defaults(self, guild_id: int | None, user_id: int) -> None:
        await self.redis.delete(keys.member(guild_id or 0, user_id, "settings"))

    # -- models ---------------------------------------------------------------------------------------------

    async def models(self) -> dict[str, ModelInfo]:
        """The models workers advertise (`imagine:models`), cached for a few seconds."""
        now = time.monotonic()
        if now - self._models_at > MODELS_CACHE_S or not self._models:
            found: dict[str, ModelInfo] = {}
            for raw in await self.redis.hvals(keys.MODELS):
                try:
                    info = ModelInfo.model_validate_json(raw)
                except ValueError:
                    continue
                found[info.name] = info
            self._models, self._models_at = found, now
        return self._models

    async def model(self, name: str | None) -> ModelInfo | None:
        """The named model, or the registry's default for None; None when workers have published nothing."""
        models = await self.models()
        if name is None:
            return next((m for m in models.values() if m.default), None)
        return models.get(name)
