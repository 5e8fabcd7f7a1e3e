"""/mod: moderators keep the queue fair. One command group, hidden from members (`default_permissions`: Manage
Server) and checked again on every run, where the server's moderator role counts too (`bot.checks`).

Queue: `queue`, `cancel`, `clear`, `pause`, `resume`. Limits: `limits show|set|reset`. Members: `block`, `unblock`,
`blocked`. Prompts: `banned add|remove|list`. Where: `channels allow|remove|list`, `nsfw add|remove|list`. And
`role`, `log`. Every change is written to the server's moderator log (who, what, when), which `/mod log` lists.
Answers are private; the state lives in Redis (`imagine.limits`, `imagine.moderation`, `imagine.fair`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import discord
from discord import app_commands
from discord.ext import commands

from bot import backlog, checks
from bot.cogs.generation import model_choices
from bot.errors import Refusal
from imagine import fair, limits, moderation, waiting

if TYPE_CHECKING:
    from bot.client import ImagineBot

log = logging.getLogger(__name__)

T = TypeVar("T")
LIMIT_CHOICES = [app_commands.Choice(name=f"{n}: {lim.description}"[:100], value=n) for n, lim in limits.LIMITS.items()]


@app_commands.guild_only()
@checks.is_moderator()
class Moderation(commands.GroupCog, group_name="mod", group_description="Moderate this server's image queue"):
    limits_group = app_commands.Group(name="limits", description="Show and set this server's limits")
    banned_group = app_commands.Group(name="banned", description="Words and phrases prompts may not use")
    channels_group = app_commands.Group(name="channels", description="The channels where the bot makes images")
    nsfw_group = app_commands.Group(name="nsfw", description="Models allowed only in age-restricted channels")

    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot
        super().__init__()

    # -- plumbing -------------------------------------------------------------------------------------------

    async def run(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Redis work off the event loop (the moderation modules use the synchronous client, like RQ)."""
        return await asyncio.to_thread(func, self.bot.queue_conn, *args, **kwargs)

    async def done(self, interaction: discord.Interaction, action: str, detail: str, answer: str) -> None:
        """Log the action (who, what, when), then answer the moderator privately."""
        await self.run(moderation.record, _guild(interaction), interaction.user.id, action, detail)
        await _say(interaction, answer)

    # -- the queue ------------------------------------------------------------------------------------------

    @app_commands.command(name="queue")
    @checks.is_moderator()
    async def queue(self, interaction: discord.Interaction) -> None:
        """List this server's queue: who asked, what, and how long it has waited."""
        await _begin(interaction)
        guild_id = _guild(interaction)
        jobs = await backlog.jobs_of(self.bot, guild_id)
        paused = await self.run(fair.is_paused, guild_id)
        title = f"**This server's queue**{' (⏸️ paused)' if paused else ''}: {len(jobs)} job(s)"
        await _say(interaction, backlog.listing(jobs, who=True, empty="The queue here is empty.", title=title))

    @app_commands.command(name="cancel")
    @app_commands.describe(job="The job (its id from /mod queue, or pick one)")
    @checks.is_moderator()
    async def cancel(self, interaction: discord.Interaction, job: str) -> None:
        """Cancel any waiting job of this server."""
        await _begin(interaction)
        found = waiting.find(await backlog.jobs_of(self.bot, _guild(interaction)), job)
        if found is None:
            raise Refusal("there is no such job in this server's queue (see /mod queue).")
        outcome = await backlog.cancel(self.bot, found, "cancelled by a moderator")
        if outcome != "cancelled":
            raise Refusal(_not_cancelled(outcome))
        await self.done(interaction, "cancelled", f"job {found.job_id} of <@{found.user_id}>", "Cancelled that job.")

    @cancel.autocomplete("job")
    async def _cancel_autocomplete(self, interaction: discord.Interaction, current: str) -> list[Any]:
        return backlog.choices(await backlog.jobs_of(self.bot, _guild(interaction)), current, who=True)

    @app_commands.command(name="clear")
    @app_commands.describe(member="Only this member's jobs (leave empty for everyone's)")
    @checks.is_moderator()
    async def clear(self, interaction: discord.Interaction, member: discord.Member | None = None) -> None:
        """Cancel every waiting job here, or one member's."""
        await _begin(interaction)
        guild_id = _guild(interaction)
        jobs = [j for j in await backlog.jobs_of(self.bot, guild_id, member.id if member else None)]
        cancelled = []
        for job in jobs:
            if (
                job.state != "running"
                and await backlog.cancel(self.bot, job, "cancelled by a moderator") == "cancelled"
            ):
                cancelled.append(job)
        whose = f"<@{member.id}>'s" if member else "all"
        await self.done(
            interaction, "cleared", f"{whose} jobs ({len(cancelled)})", f"Cancelled {len(cancelled)} waiting job(s)."
        )

    @app_commands.command(name="pause")
    @checks.is_moderator()
    async def pause(self, interaction: discord.Interaction) -> None:
        """Pause this server's queue: waiting jobs stay, but no worker starts them until /mod resume."""
        await _begin(interaction)
        guild_id = _guild(interaction)
        changed = await self.run(fair.pause, guild_id)
        accepts = (await self.run(limits.load, guild_id, self.bot.settings)).paused_accepts
        new = "new requests are still taken and wait" if accepts else "new requests are refused"
        answer = f"Paused: waiting jobs stay, {new}." if changed else "The queue here was already paused."
        await self.done(interaction, "paused the queue", "", answer)

    @app_commands.command(name="resume")
    @checks.is_moderator()
    async def resume(self, interaction: discord.Interaction) -> None:
        """Resume this server's queue: waiting jobs take their places again."""
        await _begin(interaction)
        changed = await self.run(fair.resume, _guild(interaction))
        answer = "Resumed: waiting jobs are back in the queue." if changed else "The queue here was not paused."
        await self.done(interaction, "resumed the queue", "", answer)

    # -- limits ---------------------------------------------------------------------------------------------

    @limits_group.command(name="show")
    @checks.is_moderator()
    async def limits_show(self, interaction: discord.Interaction) -> None:
        """Show every limit of this server."""
        await _begin(interaction)
        guild_id = _guild(interaction)
        current = await self.run(limits.load, guild_id, self.bot.settings)
        changed = await self.run(limits.overridden, guild_id)
        lines = ["**Limits here** (set with /mod limits set):"]
        for name, lim in limits.LIMITS.items():
            value = limits.shown(name, getattr(current, name))
            lines.append(f"`{name}` **{value}**{'' if name in changed else ' (default)'} — {lim.description}")
        await _say(interaction, "\n".join(lines))

    @limits_group.command(name="set")
    @app_commands.describe(limit="Which limit", value="A number; for models `all` or names with commas; yes or no")
    @app_commands.choices(limit=LIMIT_CHOICES)
    @checks.is_moderator()
    async def limits_set(self, interaction: discord.Interaction, limit: str, value: str) -> None:
        """Set one of this server's limits."""
        await _begin(interaction)
        try:
            parsed = limits.parse(limit, value, self.bot.settings)
        except limits.LimitError as exc:
            raise Refusal(str(exc)) from None
        await self.run(limits.store, _guild(interaction), limit, parsed)
        shown = limits.shown(limit, parsed)
        await self.done(interaction, "set a limit", f"{limit} = {shown}", f"`{limit}` is now **{shown}**.")

    @limits_group.command(name="reset")
    @app_commands.describe(limit="Which limit (leave empty for all)")
    @app_commands.choices(limit=LIMIT_CHOICES)
    @checks.is_moderator()
    async def limits_reset(self, interaction: discord.Interaction, limit: str | None = None) -> None:
        """Put one limit, or all, back to the default."""
        await _begin(interaction)
        await self.run(limits.reset, _guild(interaction), limit)
        what = f"`{limit}`" if limit else "every limit"
        await self.done(interaction, "reset limits", limit or "all", f"Back to the default: {what}.")

    # -- members --------------------------------------------------------------------------------------------

    @app_commands.command(name="block")
    @app_commands.describe(member="Who may no longer ask for images here", clear="Also cancel their waiting jobs")
    @checks.is_moderator()
    async def block(self, interaction: discord.Interaction, member: discord.Member, clear: bool = False) -> None:
        """Block a member from asking for images on this server."""
        await _begin(interaction)
        guild_id = _guild(interaction)
        changed = await self.run(moderation.block, guild_id, member.id)
        cleared = ""
        if clear:
            gone = await self.run(waiting.clear, guild_id, user_id=member.id, reason="cancelled by a moderator")
            for job in gone:
                await backlog.tell(self.bot, job, "cancelled by a moderator")
            cleared = f" and cancelled {len(gone)} waiting job(s)"
        answer = f"Blocked <@{member.id}>{cleared}." if changed else f"<@{member.id}> was already blocked{cleared}."
        await self.done(interaction, "blocked", f"<@{member.id}>", answer)

    @app_commands.command(name="unblock")
    @app_commands.describe(member="Who may ask for images again")
    @checks.is_moderator()
    async def unblock(self, interaction: discord.Interaction, member: discord.Member) -> None:
        """Let a blocked member ask for images again."""
        await _begin(interaction)
        changed = await self.run(moderation.unblock, _guild(interaction), member.id)
        answer = f"Unblocked <@{member.id}>." if changed else f"<@{member.id}> was not blocked."
        await self.done(interaction, "unblocked", f"<@{member.id}>", answer)

    @app_commands.command(name="blocked")
    @checks.is_moderator()
    async def blocked(self, interaction: discord.Interaction) -> None:
        """List the members blocked here."""
        await _begin(interaction)
        ids = await self.run(moderation.blocked, _guild(interaction))
        text = "Blocked here: " + ", ".join(f"<@{i}>" for i in ids) if ids else "Nobody is blocked here."
        await _say(interaction, text[:2000])

    # -- banned words ---------------------------------------------------------------------------------------

    @banned_group.command(name="add")
    @app_commands.describe(pattern="A word or phrase; * stands for any letters (gor* catches gore and gory), 4 at most")
    @checks.is_moderator()
    async def banned_add(self, interaction: discord.Interaction, pattern: app_commands.Range[str, 1, 100]) -> None:
        """Refuse prompts that use this word or phrase (whole words, any case)."""
        await _begin(interaction)
        try:
            stored, added = await self.run(moderation.ban, _guild(interaction), pattern)
        except moderation.RuleError as exc:
            raise Refusal(str(exc)) from None
        answer = f"Prompts with ||{stored}|| are now refused." if added else f"||{stored}|| was banned already."
        await self.done(interaction, "banned a word", f"||{stored}||", answer)

    @banned_group.command(name="remove")
    @app_commands.describe(pattern="The word or phrase, as listed")
    @checks.is_moderator()
    async def banned_remove(self, interaction: discord.Interaction, pattern: app_commands.Range[str, 1, 100]) -> None:
        """Allow a banned word or phrase again."""
        await _begin(interaction)
        stored, removed = await self.run(moderation.unban, _guild(interaction), pattern)
        answer = f"||{stored}|| is allowed again." if removed else f"||{stored}|| was not banned."
        await self.done(interaction, "unbanned a word", f"||{stored}||", answer)

    @banned_group.command(name="list")
    @checks.is_moderator()
    async def banned_list(self, interaction: discord.Interaction) -> None:
        """List the banned words and phrases (hidden behind spoilers)."""
        await _begin(interaction)
        words = await self.run(moderation.banned, _guild(interaction))
        text = "Banned here: " + ", ".join(f"||{w}||" for w in words) if words else "No words are banned here."
        await _say(interaction, text[:2000])

    # -- channels and NSFW models ---------------------------------------------------------------------------

    @channels_group.command(name="allow")
    @app_commands.describe(channel="A channel where the bot makes images (then only the chosen ones)")
    @checks.is_moderator()
    async def channels_allow(self, interaction: discord.Interaction, channel: discord.TextChannel) -> None:
        """Make images in this channel; once any is chosen, only in the chosen channels."""
        await _begin(interaction)
        await self.run(moderation.allow_channel, _guild(interaction), channel.id)
        chosen = await self.run(moderation.channels, _guild(interaction))
        answer = "I make images only in " + ", ".join(f"<#{c}>" for c in chosen) + " now."
        await self.done(interaction, "allowed a channel", f"<#{channel.id}>", answer)

    @channels_group.command(name="remove")
    @app_commands.describe(channel="A channel to stop making images in")
    @checks.is_moderator()
    async def channels_remove(self, interaction: discord.Interaction, channel: discord.TextChannel) -> None:
        """Stop making images in this channel (with none chosen, every channel is fine)."""
        await _begin(interaction)
        await self.run(moderation.disallow_channel, _guild(interaction), channel.id)
        chosen = await self.run(moderation.channels, _guild(interaction))
        answer = "I make images only in " + ", ".join(f"<#{c}>" for c in chosen) if chosen else "I make images in any"
        await self.done(interaction, "removed a channel", f"<#{channel.id}>", answer + " channel(s) now.")

    @channels_group.command(name="list")
    @checks.is_moderator()
    async def channels_list(self, interaction: discord.Interaction) -> None:
        """Show where the bot makes images."""
        await _begin(interaction)
        chosen = await self.run(moderation.channels, _guild(interaction))
        text = "I make images in " + ", ".join(f"<#{c}>" for c in chosen) if chosen else "I make images in any channel."
        await _say(interaction, text)

    @nsfw_group.command(name="add")
    @app_commands.describe(model="A model that may draw adult content")
    @checks.is_moderator()
    async def nsfw_add(self, interaction: discord.Interaction, model: str) -> None:
        """Allow this model only in age-restricted channels."""
        await _begin(interaction)
        name = model.strip().lower()
        await self.run(moderation.mark_nsfw, _guild(interaction), name)
        answer = f"`{name[:64]}` can be used only in age-restricted channels now."
        await self.done(interaction, "marked a model NSFW", name[:64], answer)

    @nsfw_group.command(name="remove")
    @app_commands.describe(model="A model to allow in every channel again")
    @checks.is_moderator()
    async def nsfw_remove(self, interaction: discord.Interaction, model: str) -> None:
        """Allow this model in every channel again."""
        await _begin(interaction)
        name = model.strip().lower()
        removed = await self.run(moderation.unmark_nsfw, _guild(interaction), name)
        answer = f"`{name[:64]}` can be used in any channel now." if removed else f"`{name[:64]}` was not marked."
        await self.done(interaction, "unmarked a model NSFW", name[:64], answer)

    @nsfw_group.command(name="list")
    @checks.is_moderator()
    async def nsfw_list(self, interaction: discord.Interaction) -> None:
        """List the models allowed only in age-restricted channels."""
        await _begin(interaction)
        names = await self.run(moderation.nsfw_models, _guild(interaction))
        text = "Only in age-restricted channels: " + ", ".join(f"`{n}`" for n in names) if names else "None."
        await _say(interaction, text)

    @nsfw_add.autocomplete("model")
    @nsfw_remove.autocomplete("model")
    async def _model_autocomplete(self, interaction: discord.Interaction, current: str) -> list[Any]:
        return await model_choices(self.bot, current)

    # -- role and log ---------------------------------------------------------------------------------------

    @app_commands.command(name="role")
    @app_commands.describe(role="The role whose members moderate here (leave empty to have none)")
    @checks.manages_server()
    async def role(self, interaction: discord.Interaction, role: discord.Role | None = None) -> None:
        """Choose the moderator role (besides members with Manage Server)."""
        await _begin(interaction)
        await self.run(moderation.set_moderator_role, _guild(interaction), role.id if role else None)
        if role is None:
            await self.done(interaction, "cleared the moderator role", "", "No role moderates here now.")
            return
        answer = (
            f"<@&{role.id}> moderates here now. Discord still hides /mod from members without Manage Server: "
            "allow the role under Server Settings > Integrations."
        )
        await self.done(interaction, "set the moderator role", f"<@&{role.id}>", answer)

    @app_commands.command(name="log")
    @app_commands.describe(count="How many of the latest actions (1-50)")
    @checks.is_moderator()
    async def history(self, interaction: discord.Interaction, count: app_commands.Range[int, 1, 50] = 15) -> None:
        """What moderators did here: who, what, when."""
        await _begin(interaction)
        actions = await self.run(moderation.history, _guild(interaction), count)
        if not actions:
            await _say(interaction, "No moderator actions yet.")
            return
        lines = [f"<t:{int(a.ts)}:f> <@{a.actor}> {a.action}{' ' + a.detail if a.detail else ''}" for a in actions]
        await _say(interaction, "\n".join(lines)[:2000])


def _guild(interaction: discord.Interaction) -> int:
    assert interaction.guild_id is not None  # guild_only
    return interaction.guild_id


def _not_cancelled(outcome: str) -> str:
    if outcome == "running":
        return "that job is already being drawn; it cannot be stopped now."
    return "that job is no longer waiting (it finished, or was cancelled)."


async def _begin(interaction: discord.Interaction) -> None:
    await interaction.response.defer(ephemeral=True, thinking=True)


async def _say(interaction: discord.Interaction, text: str) -> None:
    await interaction.followup.send(text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none())


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(Moderation(bot))
