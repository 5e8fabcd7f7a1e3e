"""Where a job's messages go on Discord, and how to reach them once the interaction token has expired.

A job asked for by a slash command or a button carries its interaction's application id (its token waits in its
own key for 15 minutes, `imagine.tokens`): its status message is the interaction's `@original`, edited over the
webhook route while the token lives. After that (or for a job
asked for by a reaction, which has no token) the status message is edited in its channel with the bot token, and a
late result becomes a new channel message replying to the request, allowed to ping the requester and nobody else.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from imagine import ui
from imagine.contract import JobSpec
from worker.discord_rest import DiscordError, DiscordREST, File

log = logging.getLogger(__name__)

DISCORD_EPOCH_MS = 1420070400000
UNKNOWN_MESSAGE = 10008
#: An interaction token lives 15 minutes; stop using it a little before, rather than race its expiry.
TOKEN_LIFETIME_S = 15 * 60 - 20


def snowflake_time(snowflake: int) -> float:
    """Seconds since the epoch at which a Discord id was made."""
    return ((snowflake >> 22) + DISCORD_EPOCH_MS) / 1000


@dataclass
class Target:
    application_id: int | None = None
    token: str | None = None
    interaction_id: int | None = None
    channel_id: int | None = None
    message_id: int | None = None
    user_id: int | None = None
    upload_limit: int | None = None
    token_dead: bool = field(default=False)
    delivered_via: str = "none"

    @classmethod
    def of(cls, spec: JobSpec, token: str | None = None) -> Target:
        """Where `spec`'s messages go; `token` is its interaction token while it lives (`imagine.tokens`)."""
        r = spec.requester
        if r is None:
            return cls()
        if token is None and r.interaction_token is not None:
            token = r.interaction_token.get_secret_value()
        return cls(
            application_id=r.application_id,
            token=token,
            interaction_id=r.interaction_id,
            channel_id=r.channel_id,
            message_id=r.message_id,
            user_id=r.user_id,
            upload_limit=r.upload_limit,
        )

    @property
    def reachable(self) -> bool:
        return bool(self.token and self.application_id) or bool(self.channel_id)

    def token_usable(self) -> bool:
        if not (self.token and self.application_id) or self.token_dead:
            return False
        if self.interaction_id and time.time() - snowflake_time(self.interaction_id) > TOKEN_LIFETIME_S:
            self.token_dead = True
            return False
        return True

    def edit(self, rest: DiscordREST, payload: dict[str, Any], files: list[File] | tuple[File, ...] = ()) -> Any:
        """Edit the status message: over the interaction webhook while it lives, else in the channel."""
        if self.token_usable():
            assert self.application_id is not None and self.token is not None
            try:
                message = rest.edit_original(self.application_id, self.token, payload, files)
                self.delivered_via = "interaction"
                return message
            except DiscordError as exc:
                if not exc.token_gone:
                    raise
                log.info("interaction token expired; using the channel from now on")
                self.token_dead = True
        if self.channel_id and self.message_id:
            message = rest.edit(self.channel_id, self.message_id, payload, files)
            self.delivered_via = "channel-edit"
            return message
        raise DiscordError(0, 0, "no message to edit: the interaction expired and no message id is known")

    def post_result(
        self,
        rest: DiscordREST,
        payload: dict[str, Any],
        files: list[File],
        late_content: str,
        *,
        tidy: str = "✅ finished — the result is in the reply below.",
        nonce: str | None = None,
    ) -> Any:
        """Turn the status message into the result; once the token is gone, reply in the channel instead.

        With a `nonce`, the channel reply is idempotent (`enforce_nonce`): Discord answers a repeat of it with the
        first message instead of posting a second, so a retry after a crash mid-post cannot post twice.
        """
        if self.token_usable():
            assert self.application_id is not None and self.token is not None
            try:
                message = rest.edit_original(self.application_id, self.token, payload, files)
                self.delivered_via = "interaction"
                return message
            except DiscordError as exc:
                if exc.code == UNKNOWN_MESSAGE:
                    log.info("the status message was deleted; posting the result in the channel")
                elif not exc.token_gone:
                    raise
                else:
                    log.info("token expired while posting (code %s); replying in the channel", exc.code)
                    self.token_dead = True
        elif not self.token and not self.interaction_id and self.channel_id and self.message_id:
            # A job asked for by a reaction: its status message is ours to edit with the bot token.
            try:
                return self.edit(rest, payload, files)
            except DiscordError as exc:
                if exc.code != UNKNOWN_MESSAGE:
                    raise
                log.info("the status message was deleted; posting the result in the channel")
        if not self.channel_id:
            raise DiscordError(0, 0, "the interaction expired and the request's channel is unknown")
        late = dict(payload)
        late["content"] = (f"<@{self.user_id}> " if self.user_id else "") + late_content
        late["allowed_mentions"] = ui.only_user(self.user_id)
        if self.message_id:
            late["message_reference"] = {"message_id": str(self.message_id), "fail_if_not_exists": False}
        if nonce:
            late["nonce"], late["enforce_nonce"] = nonce, True
        message = rest.send(self.channel_id, late, files)
        self.delivered_via = "channel-reply"
        if self.message_id:
            try:  # the old status message would say "generating…" forever
                rest.edit(
                    self.channel_id,
                    self.message_id,
                    {
                        "content": tidy,
                        "attachments": [],
                        "allowed_mentions": ui.NO_MENTIONS,
                    },
                )
            except DiscordError as exc:
                log.info("could not tidy the expired status message: %s", exc)
        return message
