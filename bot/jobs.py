"""From what a member asked to a job on the queue: flags, defaults, validation, the first "#n in queue", enqueue.

Precedence, lowest first: the model's defaults (filled in by the worker), the member's `/settings`, the slash
command's options, inline flags in the prompt. The bot validates against the same contract and limits the worker
checks again, so a refusal comes at once and names the field.

Who asked shapes where the answers go (`Origin`): an interaction's own message while its token lives, or a status
message the bot posts in the channel for a reaction. Either way the status message exists before the job is
enqueued, so the worker always has a message to keep current.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import discord
from pydantic import SecretStr

from bot import flags as flag_parser
from bot import gate
from bot.errors import Refusal
from imagine import queue, ui
from imagine.admission import Refused
from imagine.contract import JobSpec, Requester

if TYPE_CHECKING:
    from bot.client import ImagineBot

log = logging.getLogger(__name__)


async def defer_public(interaction: discord.Interaction) -> int:
    """Acknowledge at once with a public "thinking…" message and return its id (the job's status message)."""
    response = await interaction.response.defer(thinking=True)
    interaction.extras["public_defer"] = True
    message_id = response.message_id if response is not None else None
    if message_id is None:
        message_id = (await interaction.original_response()).id
    return message_id


def age_restricted(channel: object) -> bool:
    """Discord's NSFW flag on the channel (or its parent, for a thread)."""
    is_nsfw = getattr(channel, "is_nsfw", None)
    return bool(is_nsfw()) if callable(is_nsfw) else False


class Origin:
    """Where a job was asked for: how to show its first status and where the worker answers."""

    async def open(self, text: str) -> int:
        """Make sure the job has a status message (showing `text` if it is new); return its id."""
        raise NotImplementedError

    async def show(self, text: str) -> None:
        """Replace the status message's text."""
        raise NotImplementedError

    async def withdraw(self) -> None:
        """The job was refused after its status message was shown (an interaction's: the error map removes it)."""

    def requester(self, message_id: int) -> Requester:
        raise NotImplementedError

    def where(self) -> dict[str, Any]:
        """The server, channel and its age restriction, as `bot.gate.admit` takes them."""
        r = self.requester(0)
        return {"guild_id": r.guild_id, "channel_id": r.channel_id, "age_restricted": r.age_restricted}

    user: discord.abc.User
    #: How the request came, for the logs (`/imagine`, `a 🔄 reaction`).
    what: str = "a request"


class InteractionOrigin(Origin):
    """A slash command, button or modal: the deferred response is the status message, edited by token."""

    def __init__(self, interaction: discord.Interaction, message_id: int, what: str = "a request") -> None:
        self.interaction = interaction
        self.message_id = message_id
        self.user = interaction.user
        self.what = what

    async def open(self, text: str) -> int:
        return self.message_id  # the deferred "thinking…" message

    async def show(self, text: str) -> None:
        await self.interaction.edit_original_response(content=text, allowed_mentions=discord.AllowedMentions.none())

    def requester(self, message_id: int) -> Requester:
        i = self.interaction
        return Requester(
            guild_id=i.guild_id,
            channel_id=i.channel_id,
            user_id=i.user.id,
            message_id=message_id,
            application_id=i.application_id,
            interaction_id=i.id,
            interaction_token=SecretStr(i.token),
            upload_limit=i.filesize_limit,
            age_restricted=age_restricted(i.channel),
        )


class ChannelOrigin(Origin):
    """A reaction: no interaction, so the bot posts a status message replying to the result reacted on."""

    def __init__(
        self,
        channel: discord.abc.Messageable,
        guild: discord.Guild | None,
        user: discord.abc.User,
        reply_to: int | None,
        what: str = "a reaction",
    ) -> None:
        self.channel = channel
        self.guild = guild
        self.user = user
        self.reply_to = reply_to
        self.what = what
        self.message: discord.Message | None = None

    async def open(self, text: str) -> int:
        mentions = discord.AllowedMentions.none()
        if self.reply_to is None:
            self.message = await self.channel.send(text, allowed_mentions=mentions)
        else:
            reference = discord.MessageReference(
                message_id=self.reply_to, channel_id=self.channel_id, fail_if_not_exists=False
            )
            self.message = await self.channel.send(text, reference=reference, allowed_mentions=mentions)
        return self.message.id

    async def show(self, text: str) -> None:
        assert self.message is not None
        await self.message.edit(content=text, allowed_mentions=discord.AllowedMentions.none())

    async def withdraw(self) -> None:
        """The job was refused: a reaction cannot be answered privately, so take the public status away."""
        if self.message is not None:
            with contextlib.suppress(discord.HTTPException):
                await self.message.delete()

    @property
    def channel_id(self) -> int:
        return int(self.channel.id)  # type: ignore[attr-defined]  # every Messageable given here is a channel

    def requester(self, message_id: int) -> Requester:
        return Requester(
            guild_id=self.guild.id if self.guild else None,
            channel_id=self.channel_id,
            user_id=self.user.id,
            message_id=message_id,
            upload_limit=self.guild.filesize_limit if self.guild else None,
            age_restricted=age_restricted(self.channel),
        )


@dataclass
class Submitted:
    job_id: str
    position: int
    message_id: int


class Submitter:
    """Builds specs and enqueues them for the bot."""

    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot

    @property
    def settings(self) -> Any:
        return self.bot.settings

    async def spec_from_request(
        self, *, guild_id: int | None, user_id: int, text: str, options: Mapping[str, Any]
    ) -> JobSpec:
        """A validated spec (no requester yet) from the prompt with its flags, the options and the defaults."""
        parsed = flag_parser.parse(text)
        fields: dict[str, Any] = dict(await self.bot.store.member_defaults(guild_id, user_id))
        if isinstance(fields.get("aspect"), str):
            try:
                fields["aspect"] = flag_parser.parse_aspect(fields["aspect"])
            except flag_parser.FlagError:
                fields.pop("aspect")
        for key, value in options.items():
            if value is not None:
                fields[key] = flag_parser.parse_aspect(value) if key == "aspect" else value
        negatives = [n for n in (options.get("negative"), parsed.fields.pop("negative", None)) if n]
        fields.update(parsed.fields)
        fields["negative"] = ", ".join(negatives)
        return await self.spec_from_fields(parsed.prompt, fields)

    async def spec_from_fields(self, prompt: str, fields: Mapping[str, Any]) -> JobSpec:
        data: dict[str, Any] = {"prompt": prompt, "negative_prompt": fields.get("negative") or ""}
        for key in ("seed", "steps", "guidance", "count", "sampler"):
            if fields.get(key) is not None:
                data[key] = fields[key]
        model = await self._model(fields.get("model"))
        if model is not None:
            data["model"] = model.name
        elif fields.get("model"):
            data["model"] = fields["model"]
        if fields.get("aspect") is not None:
            if model is None:
                raise Refusal("no worker has told me its models yet, so I cannot size an aspect ratio; try again soon.")
            w, h = flag_parser.size_for(fields["aspect"], model.defaults.width, model.defaults.height)
            data["width"], data["height"] = w, h
        return JobSpec.parse(data, self.settings.limits())

    async def _model(self, name: str | None) -> Any:
        models = await self.bot.store.models()
        if not models:
            return None
        if name is None:
            return await self.bot.store.model(None)
        info = models.get(name)
        if info is None:
            raise Refusal(f"there is no model called `{name[:40]}`; choose one of {', '.join(sorted(models))}.")
        return info

    def again(self, spec: JobSpec, **changes: Any) -> JobSpec:
        """A copy of a stored spec for a new job: no requester, a new seed unless given, re-validated."""
        data = spec.model_dump(mode="json", exclude={"requester"})
        data.update({"seed": None, **changes})
        return JobSpec.parse(data, self.settings.limits())

    async def position(self, job_id: str) -> int | None:
        """The 1-based place of a waiting job, or None once a worker took it (see `imagine.fair.places`)."""
        found = await asyncio.to_thread(queue.position, self.bot.queue_conn, job_id)
        return found + 1 if found is not None else None

    async def submit(self, spec: JobSpec, origin: Origin) -> Submitted:
        """Enqueue, then show "#n in queue" on the origin's status message; from then on the worker keeps it.

        The position is read after the job is in the queue, so concurrent requests each see their real place. The
        edit slot is taken first: if a worker already took the job (and the slot, to say "starting"), the bot
        stays silent rather than overwrite the worker's newer status.
        """
        # The server's rules first, before a status message is posted (a reaction's) or anything is stored.
        await gate.admit(self.bot, spec, user=origin.user, what=origin.what, **origin.where())
        shown = spec.model_copy(update={"requester": Requester(user_id=origin.user.id)})
        message_id = await origin.open(ui.queued_text(shown, 0))
        spec = spec.model_copy(update={"requester": origin.requester(message_id)})
        job_id = queue.new_job_id()
        try:
            await asyncio.to_thread(queue.enqueue, self.bot.queue_conn, spec, self.settings, job_id=job_id)
        except Refused:
            await origin.withdraw()
            raise
        await self.bot.store.link_message(message_id, job_id)
        position = await self.position(job_id)
        if position is not None and await self.bot.store.claim_edit(job_id):
            await origin.show(ui.queued_text(shown, position))
            await self.bot.store.note_shown_position(job_id, position)
        log.info("job %s queued at #%s for user %s", job_id, position, origin.user.id)
        return Submitted(job_id, position or 0, message_id)
