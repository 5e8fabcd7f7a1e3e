"""A picture attached to /imagine: checked, made plain, and kept in Redis where a worker finds a starting image.

The bytes are untrusted (`imagine.images` refuses what is not a still, whole, reasonably sized image, before
decoding more than its header). What passes is kept as a PNG under `imagine:images:<upload id>` for
`Settings.image_ttl`, the same place a variation's source lives, so the worker runs it as image-to-image from
"image 1" of that upload, at the configured variation strength.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import TYPE_CHECKING

import discord

from bot import gate
from bot.errors import Refusal
from imagine import images
from imagine.contract import InitImage

if TYPE_CHECKING:
    from bot.client import ImagineBot

log = logging.getLogger(__name__)


async def init_image(
    bot: ImagineBot, attachment: discord.Attachment, *, guild_id: int | None = None, user_id: int | None = None
) -> InitImage:
    """The starting picture for a job from `attachment`, or a `Refusal` that says what is wrong with it.

    Called once the server's rules let the member ask (`bot.gate`); a refused file is noted in the server's
    moderator log (oversized or hostile files are how a member would try to tie up the bot).
    """
    try:
        images.check_size(attachment.size)  # before downloading anything
        try:
            data = await attachment.read()
        except discord.HTTPException as exc:
            log.warning("could not download attachment %s: %s", attachment.id, exc)
            raise Refusal("I could not download that file from Discord; try attaching it again.") from None
        png = await asyncio.to_thread(images.sanitize, data)
    except images.ImageRefused as exc:
        if guild_id is not None and user_id is not None:
            await gate.note(bot, guild_id, user_id, "attachment", f"an attachment: {exc}")
        raise Refusal(f"⚠️ {exc}") from None
    upload_id = f"upload-{uuid.uuid4().hex}"
    await bot.store.keep_image(upload_id, 0, png)
    log.info("kept attachment %s (%d bytes as PNG) as %s", attachment.id, len(png), upload_id)
    return InitImage(job_id=upload_id, index=0, strength=bot.settings.variation_strength)
