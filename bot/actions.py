"""What the buttons and reactions under a result do, in one place, whichever way they were asked for.

Re-roll: the same request with a new seed. Variation n: image-to-image from image n at the configured strength,
new seeds. Upscale n: image n alone at full size. Info: every parameter, privately. Delete: by the requester or a
moderator. Each new job belongs to the member who pressed or reacted, not to the original requester.
"""

from __future__ import annotations

import asyncio
import io
import logging
from typing import TYPE_CHECKING

import discord

from bot import checks, gate
from bot.errors import JobGone, NotAllowed, Refusal
from bot.jobs import InteractionOrigin, Origin, Submitted
from bot.store import JobRecord
from imagine import ui, uploads
from imagine.contract import InitImage, Requester

if TYPE_CHECKING:
    from bot.client import ImagineBot

log = logging.getLogger(__name__)


async def record_or_gone(bot: ImagineBot, job_id: str, guild_id: int | None, user_id: int) -> JobRecord:
    """The job a button names, if it is a job of this server: a custom id is the client's to write, so one that
    names another server's job (to read its prompt, or re-post its images here) is refused and noted."""
    record = await bot.store.job(job_id)
    if record is None:
        raise JobGone()
    owner = record.spec.requester.guild_id if record.spec.requester else None
    if guild_id is None or owner != guild_id:
        if guild_id is not None:
            detail = f"a button naming job {job_id[:32]} of another server"
            await gate.note(bot, guild_id, user_id, "other-server", detail)
        raise NotAllowed("that button does not belong to an image of this server.")
    return record


async def reroll(bot: ImagineBot, record: JobRecord, origin: Origin) -> Submitted:
    """Same prompt and parameters as asked (defaults re-resolved by the worker), new seed."""
    checks.ensure_member(origin.user)
    spec = bot.jobs.again(record.spec)
    return await bot.jobs.submit(spec, origin)


async def vary(
    bot: ImagineBot, record: JobRecord, index: int, origin: Origin, message: discord.Message | None = None
) -> Submitted:
    """Variations of image `index` (1-based): the resolved parameters, init image, new seeds."""
    checks.ensure_member(origin.user)
    if record.spec.kind == "clip":
        raise Refusal("a clip has no variations; re-roll it instead.")
    if not 1 <= index <= max(record.count, 1):
        raise Refusal(f"this result has {record.count} image{'s' if record.count != 1 else ''}; there is no #{index}.")
    if record.status != "done" and record.resolved is None:
        raise Refusal("that image is not finished yet.")
    init = InitImage(job_id=record.job_id, index=index - 1, strength=bot.settings.variation_strength)
    spec = bot.jobs.again(record.best, init_image=init.model_dump())
    # The server's rules before the source is fetched from Discord and stored (submit checks them again).
    await gate.admit(bot, spec, user=origin.user, what=origin.what, **origin.where())
    await ensure_source(bot, record, index, message)
    return await bot.jobs.submit(spec, origin)


async def image_bytes(bot: ImagineBot, record: JobRecord, index: int, message: discord.Message | None) -> bytes:
    """Image `index` (1-based) as PNG: from Redis while kept, else cut from the result's attachment on Discord."""
    data = await bot.store.image(record.job_id, index - 1)
    if data is not None:
        return data
    if message is None and record.channel_id and record.message_id:
        try:
            message = await bot.get_partial_messageable(record.channel_id).fetch_message(record.message_id)
        except discord.HTTPException:
            message = None
    if message is None or not message.attachments:
        raise Refusal("that image is no longer available; re-roll it instead.")
    sheet = await message.attachments[0].read()
    return await asyncio.to_thread(uploads.crop_cell, sheet, index - 1, record.count)


async def ensure_source(bot: ImagineBot, record: JobRecord, index: int, message: discord.Message | None) -> None:
    """Make sure a worker will find the variation's source image in Redis."""
    if await bot.store.image(record.job_id, index - 1) is None:
        await bot.store.keep_image(record.job_id, index - 1, await image_bytes(bot, record, index, message))


async def upscale(bot: ImagineBot, interaction: discord.Interaction, record: JobRecord, index: int) -> None:
    """Post image `index` alone, at full size, as the answer to the (already deferred) interaction."""
    if not 1 <= index <= record.count:
        raise Refusal(f"this result has no image #{index}.")
    # No job, but the bot posts an image for the member: the same rules as asking for one.
    origin = InteractionOrigin(interaction, 0, what=f"the U{index} button")
    await gate.admit(bot, record.best, user=interaction.user, what=origin.what, **origin.where())
    data = await image_bytes(bot, record, index, interaction.message)
    name, data = await asyncio.to_thread(
        uploads.fit, f"imagine-{record.job_id[:12]}-{index}.png", data, interaction.filesize_limit
    )
    shown = record.best.model_copy(update={"requester": Requester(user_id=interaction.user.id)})
    seed = record.seeds[index - 1] if len(record.seeds) >= index else None
    content = f"{ui.headline(shown)}\n-# image {index} · seed {seed}"
    await interaction.followup.send(
        content, file=discord.File(io.BytesIO(data), filename=name), allowed_mentions=discord.AllowedMentions.none()
    )


async def info(interaction: discord.Interaction, record: JobRecord) -> None:
    await interaction.followup.send(
        ui.info_text(record.best, record.seeds), ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
    )


async def delete(
    bot: ImagineBot,
    record: JobRecord,
    message: discord.PartialMessage | discord.Message,
    user: discord.abc.User,
    permissions: discord.Permissions,
) -> None:
    """Delete a result (requester or moderator only)."""
    checks.ensure_may_delete(record.user_id, user, permissions)
    await message.delete()
    log.info("result of job %s deleted by user %s", record.job_id, user.id)
