"""The queue as members and moderators read it, and cancelling a job with word to its requester.

Shared by the members' `/queue` and `/cancel` and the moderators' `/mod` commands. Redis work runs in a thread
(`imagine.waiting` is synchronous, like RQ); the bot's event loop only formats and talks to Discord.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from imagine import ui, waiting
from imagine.waiting import Outcome, QueuedJob

if TYPE_CHECKING:
    from bot.client import ImagineBot

log = logging.getLogger(__name__)

#: Lines a listing shows before "… and n more" (a message holds 2,000 characters).
SHOWN = 15


def waited(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def line(job: QueuedJob, *, who: bool) -> str:
    """One job: where it stands, whose it is, what it draws, how long it has been in, its short id."""
    place = {
        "running": "▶️ running",
        "waiting": f"#{job.position} in queue",
        "paused": "⏸️ paused",
        "queued": "⏳ queued",
    }[job.state]
    owner = f" <@{job.user_id}>" if who and job.user_id else ""
    return f"`{job.job_id[:8]}` {place}{owner} — *{ui.echo(job.prompt, 60)}* · {waited(job.age_s)}"


def listing(jobs: list[QueuedJob], *, who: bool, empty: str, title: str) -> str:
    if not jobs:
        return empty
    lines = [title, *(line(j, who=who) for j in jobs[:SHOWN])]
    if len(jobs) > SHOWN:
        lines.append(f"… and {len(jobs) - SHOWN} more")
    return "\n".join(lines)[:2000]


def choices(jobs: list[QueuedJob], current: str, *, who: bool) -> list[app_commands.Choice[str]]:
    """Autocomplete: waiting jobs whose id or prompt contains what was typed."""
    current = current.lower().strip()
    found = [j for j in jobs if j.state != "running" and (current in j.job_id or current in j.prompt.lower())]
    out = []
    for j in found[:25]:
        owner = f" by {j.user_id}" if who and j.user_id else ""
        place = f"#{j.position}" if j.position else j.state
        out.append(app_commands.Choice(name=f"{place}{owner}: {ui.short(j.prompt, 70)}"[:100], value=j.job_id))
    return out


async def jobs_of(bot: ImagineBot, guild_id: int, user_id: int | None = None) -> list[QueuedJob]:
    return await asyncio.to_thread(waiting.snapshot, bot.queue_conn, guild_id, user_id)


async def cancel(bot: ImagineBot, job: QueuedJob, reason: str) -> Outcome:
    """Cancel `job`; when it was waiting, its status message says so (`reason`) instead of its place."""
    outcome = await asyncio.to_thread(waiting.cancel, bot.queue_conn, job.job_id, reason=reason)
    if outcome == "cancelled":
        await tell(bot, job, reason)
    return outcome


async def tell(bot: ImagineBot, job: QueuedJob, reason: str) -> None:
    if not job.channel_id or not job.message_id:
        return
    owner = f" — <@{job.user_id}>" if job.user_id else ""
    text = f"**{ui.echo(job.prompt)}**{owner}\n🚫 {reason}"
    message = bot.get_partial_messageable(job.channel_id).get_partial_message(job.message_id)
    try:
        await message.edit(content=text, allowed_mentions=discord.AllowedMentions.none())
    except discord.HTTPException as exc:
        log.info("could not mark job %s cancelled on its message: %s", job.job_id, exc)
