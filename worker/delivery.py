"""Delivery to Discord from the worker: keep the member's message current while the job runs, then post the result.

The worker, not the bot, does this, so a job in flight is delivered even while the bot restarts. One `Courier` per
job with a requester:

- status edits ("starting…", "generating 12/20" with a small preview) go through an `_Editor` thread, latest-wins,
  at most one edit per `progress_interval` (2 s) per message; the interval is shared through a Redis gate key with
  the bot's first edit and with other workers updating queue positions, so no message is edited faster than that;
- when a job starts, the positions of the jobs waiting behind it are refreshed ("#3 in queue" -> "#2 in queue");
- the result is posted once (`worker.outbox.send_once`: a lease on an idempotency key, taken atomically before
  posting); what Discord will not take even after retries is kept in the outbox and posted by a later pass;
- where it goes: the interaction's own message (webhook edit of `@original`) while the token lives (15 minutes);
  after that, a new channel message that replies to the request and may ping only the requester. Jobs started by a
  reaction have no token and edit their status message in the channel with the bot token.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from typing import Any

import redis
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.serializers import JSONSerializer

from imagine import fair, keys, tokens, ui, uploads
from imagine.contract import JobResult, JobSpec
from worker import outbox
from worker.discord_rest import DiscordError, DiscordREST, File
from worker.targets import Target

log = logging.getLogger(__name__)

#: How many waiting jobs get their queue position refreshed when a job starts.
POSITIONS_SHOWN = 10


def rest_client(ctx: Any) -> DiscordREST:
    token = ctx.settings.discord_token.get_secret_value() if ctx.settings.discord_token else None
    return DiscordREST(ctx.settings.discord_api_base, token)


def store_images(conn: redis.Redis, result: JobResult, ttl: int) -> None:
    """Keep each image's PNG for U buttons and variations (`imagine:images:<job>`, field = 0-based index)."""
    key = keys.images(result.job_id)
    with conn.pipeline() as pipe:
        pipe.delete(key)
        pipe.hset(key, mapping={str(i): image.png_bytes() for i, image in enumerate(result.images)})
        pipe.expire(key, ttl)
        pipe.execute()


class NullCourier:
    """For jobs nobody waits for on Discord (`imagine generate`): every call does nothing."""

    def started(self) -> None: ...
    def progress(self, step: int, total: int, preview_png: str | None = None) -> None: ...
    def finish(self, result: JobResult) -> None: ...
    def fail(self, error: str) -> None: ...
    def close(self) -> None: ...


class Courier:
    """Everything one job says on Discord, from "starting" to the result (see the module docstring)."""

    def __init__(
        self, ctx: Any, job_id: str, spec: JobSpec, *, queue_name: str | None = None, rest: DiscordREST | None = None
    ) -> None:
        self.ctx = ctx
        self.conn: redis.Redis = ctx.conn
        self.job_id = job_id
        self.spec = spec
        self.queue_name = queue_name
        self.rest = rest or rest_client(ctx)
        self.target = Target.of(spec, tokens.fetch(self.conn, job_id))
        self.interval = float(ctx.settings.progress_interval)
        self._editor = _Editor(self, self.interval)
        #: The status message was deleted (a 404): no more edits of it.
        self.status_gone = False
        self._positions: threading.Thread | None = None

    @classmethod
    def open(
        cls, ctx: Any, job_id: str, payload: dict[str, Any], queue_name: str | None = None
    ) -> Courier | NullCourier:
        """A courier for a job with a Discord requester, else a `NullCourier`."""
        try:
            spec = JobSpec.model_validate(payload)
        except ValueError:
            return NullCourier()
        if not Target.of(spec).reachable and tokens.fetch(ctx.conn, job_id) is None:
            return NullCourier()
        return cls(ctx, job_id, spec, queue_name=queue_name)

    # -- while it runs --------------------------------------------------------------------------------------

    def started(self) -> None:
        self._editor.start()
        self._editor.submit(ui.starting_text(self.spec))
        if self.queue_name:
            self._positions = threading.Thread(
                target=self._refresh_positions, name=f"positions-{self.job_id}", daemon=True
            )
            self._positions.start()

    def progress(self, step: int, total: int, preview_png: str | None = None) -> None:
        preview = base64.b64decode(preview_png) if preview_png else None
        self._editor.submit(ui.progress_text(self.spec, step, total), preview)

    def claim_edit(self) -> float:
        """Take the message's edit slot for one interval; 0.0 when taken, else seconds until it frees up."""
        gate = keys.edit_gate(self.job_id)
        if self.conn.set(gate, self.ctx.name, px=max(1, int(self.interval * 1000)), nx=True):
            return 0.0
        return max(0.05, (self.conn.pttl(gate) or 50) / 1000)

    def edit_status(self, text: str, preview: bytes | None) -> None:
        if self.status_gone:
            return
        payload: dict[str, Any] = {"content": text, "allowed_mentions": ui.NO_MENTIONS}
        files: list[File] = []
        if preview is not None:
            files = [("preview.png", preview)]
            payload["attachments"] = [{"id": 0, "filename": "preview.png"}]
        try:
            self.target.edit(self.rest, payload, files)
        except DiscordError as exc:
            if exc.status == 404 and not exc.token_gone:
                # Deleted: every further edit would be refused too, and refusals count towards Discord's limit on
                # invalid requests (a Cloudflare ban for the whole bot). The result goes to the channel instead.
                self.status_gone = True
                log.info("job %s: its status message is gone; no more status edits", self.job_id)
                return
            log.warning("job %s: status edit refused: %s", self.job_id, exc)

    def _refresh_positions(self) -> None:
        try:
            refresh_positions(self.ctx, self.rest, self.queue_name or keys.IMAGE_QUEUE, self.interval)
        except (redis.RedisError, DiscordError) as exc:
            log.warning("refreshing queue positions failed: %s", exc)

    # -- the end --------------------------------------------------------------------------------------------

    def finish(self, result: JobResult) -> None:
        """Post the result with its buttons, once (see `worker.outbox.send_once`: kept and retried if refused)."""
        self._editor.stop()
        spec = result.spec
        if result.clip is not None:
            # A clip: its MP4 or GIF, already fitted to the upload limit by its encoder (`worker.video`).
            name, data = f"imagine-{self.job_id[:12]}.{result.clip.format}", result.clip.data_bytes()
            components = ui.clip_components(self.job_id)
        else:
            picture = result.grid if result.grid is not None and len(result.images) > 1 else result.images[0]
            name, data = uploads.fit(f"imagine-{self.job_id[:12]}.png", picture.png_bytes(), self.target.upload_limit)
            components = ui.result_components(self.job_id, len(result.images))
        parcel = outbox.Parcel(
            job_id=self.job_id,
            kind="result",
            spec=self.spec.public(),
            payload={
                "content": ui.result_text(spec, result.seeds) + hidden_note(result.filtered),
                "allowed_mentions": ui.NO_MENTIONS,
                "components": components,
                "attachments": [{"id": 0, "filename": name, "description": ui.short(spec.prompt, 1000)}],
            },
            late=ui.late_text(spec, result.seeds),
            tidy="✅ finished — the result is in the reply below.",
            files=[(name, data)],
            count=len(result.images),
        )
        if outbox.send_once(self.ctx, self.rest, parcel) == "kept":
            self.conn.hset(keys.job(self.job_id), "delivery", "pending")

    def fail(self, error: str) -> None:
        """Tell the member this job failed for good (once)."""
        self._editor.stop()
        outbox.send_once(self.ctx, self.rest, outbox.failure_parcel(self.job_id, self.spec.public(), error))

    def close(self) -> None:
        self._editor.stop()
        if self._positions is not None:
            self._positions.join(timeout=30)
        self.rest.close()


def refresh_positions(ctx: Any, rest: DiscordREST, queue_name: str, interval: float) -> int:
    """Edit "#n in queue" on the first waiting jobs whose shown position changed; returns how many were edited."""
    conn: redis.Redis = ctx.conn
    edited = 0
    for position, job_id in enumerate(fair.head(conn, queue_name, POSITIONS_SHOWN), start=1):
        record = keys.job(job_id)
        shown = conn.hget(record, "shown")
        if shown is not None and int(shown) == position:
            continue
        if not conn.set(keys.edit_gate(job_id), ctx.name, px=max(1, int(interval * 1000)), nx=True):
            continue
        try:
            spec = JobSpec.model_validate(Job.fetch(job_id, connection=conn, serializer=JSONSerializer).args[0])
        except (NoSuchJobError, ValueError, IndexError, TypeError):
            continue
        target = Target.of(spec, tokens.fetch(conn, job_id))
        if not target.reachable:
            continue
        try:
            target.edit(rest, {"content": ui.queued_text(spec, position), "allowed_mentions": ui.NO_MENTIONS})
        except DiscordError as exc:
            log.info("job %s: position edit refused: %s", job_id, exc)
            continue
        conn.hset(record, "shown", str(position))
        edited += 1
    return edited


class _Editor(threading.Thread):
    """Sends the latest status at most once per interval; older states that were never sent are dropped."""

    def __init__(self, courier: Courier, interval: float) -> None:
        super().__init__(name=f"editor-{courier.job_id}", daemon=True)
        self.courier = courier
        self.interval = interval
        self.cond = threading.Condition()
        self.text: str | None = None
        self.preview: bytes | None = None
        self.stopped = False
        self.last = float("-inf")
        self.edits = 0

    def submit(self, text: str, preview: bytes | None = None) -> None:
        with self.cond:
            self.text = text
            if preview is not None:
                self.preview = preview
            self.cond.notify()

    def run(self) -> None:
        while True:
            with self.cond:
                while self.text is None and not self.stopped:
                    self.cond.wait()
                if self.stopped:
                    return
                delay = self.last + self.interval - time.monotonic()
                if delay > 0:
                    self.cond.wait(delay)
                    continue
            wait = self._safe_claim()
            if wait:
                with self.cond:
                    self.cond.wait(wait)
                continue
            with self.cond:
                if self.stopped or self.text is None:
                    return
                text, preview, self.text, self.preview = self.text, self.preview, None, None
            self.courier.edit_status(text, preview)
            self.last = time.monotonic()
            self.edits += 1

    def _safe_claim(self) -> float:
        try:
            return self.courier.claim_edit()
        except redis.RedisError as exc:
            log.warning("edit gate unavailable (%s); editing anyway", exc)
            return 0.0

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify()
        if self.is_alive():
            self.join(timeout=30)


def hidden_note(filtered: list[int]) -> str:
    """The line that says which images the safety checker blacked out (they are not shown)."""
    if not filtered:
        return ""
    which = ", ".join(str(i + 1) for i in filtered)
    return (
        f"\n-# 🛡️ image {which} hidden by the safety checker"
        if len(filtered) == 1
        else (f"\n-# 🛡️ images {which} hidden by the safety checker")
    )


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
