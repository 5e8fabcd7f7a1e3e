"""The one door every way work enters goes through first: slash commands, buttons, the remix form, reactions and
attachments all pass the same cheap checks (blocked member, channel, banned words, model, NSFW, sizes: the
server's rules in `imagine.admission`) before anything is decoded, downloaded, stored or posted.

Two round trips to Redis: the rules, then a look ahead at the counting limits (jobs at once, per hour, the pause,
the queue's depth) through the enqueue's own script in a dry run; the enqueue still decides them atomically.

Refusals that look like probing rather than a member's honest mistake (a blocked member trying anyway, a button
of another server's image, a hostile attachment) also go to the server's moderator log, at most one entry per
member and kind a minute, so a flood cannot push the moderators' own actions out of it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import discord

from bot import checks
from imagine import admission, keys, moderation
from imagine.contract import JobSpec, Requester

if TYPE_CHECKING:
    from bot.client import ImagineBot

log = logging.getLogger(__name__)

#: Refusals worth a moderator's attention (by `Refused.limit`); the rest are ordinary and only logged.
NOTED = {"blocked"}
#: Seconds during which one member's refusals of one kind make one moderator log entry.
NOTE_EVERY_S = 60


async def admit(
    bot: ImagineBot,
    spec: JobSpec,
    *,
    guild_id: int | None,
    channel_id: int | None,
    user: discord.abc.User,
    age_restricted: bool,
    what: str,
) -> None:
    """Raise `imagine.admission.Refused` (polite, fit to show privately) when the server's rules turn this down.

    `spec` is the work as asked (a new job's spec, or the result a button re-posts); `what` names the way it came
    (`/imagine`, `the U2 button`, `a 🔄 reaction`) for the logs.
    """
    checks.ensure_member(user)
    if guild_id is None:
        return
    requester = Requester(guild_id=guild_id, channel_id=channel_id, user_id=user.id, age_restricted=age_restricted)
    probe = spec.model_copy(update={"requester": requester})

    def rules_then_counts() -> None:
        # Off the event loop: a round trip, the banned-word match, then the counting limits' look ahead (so a
        # reaction's public status message is not posted for a job the enqueue would refuse).
        rules = admission.read_rules(bot.queue_conn, guild_id, user.id, bot.settings)
        admission.check(probe, rules)
        admission.probe(bot.queue_conn, keys.IMAGE_QUEUE, guild_id, user.id, rules, bot.settings)

    try:
        await asyncio.to_thread(rules_then_counts)
    except admission.Refused as refused:
        log.info("%s by user %s in server %s refused: %s", what, user.id, guild_id, refused.limit)
        if refused.limit in NOTED:
            await note(bot, guild_id, user.id, refused.limit, f"{what}: {refused.limit}")
        raise


async def note(bot: ImagineBot, guild_id: int, user_id: int, kind: str, detail: str) -> None:
    """Put a refusal in the server's moderator log (at most one per member and kind every `NOTE_EVERY_S`)."""

    def write() -> None:
        conn = bot.queue_conn
        if conn.set(keys.guild(guild_id, f"noted:{int(user_id)}:{kind}"), "1", nx=True, ex=NOTE_EVERY_S):
            moderation.record(conn, guild_id, user_id, "was refused", detail[:200])

    await asyncio.to_thread(write)
