"""bot/gate.py and the reactions cog: every way in passes the same checks first, and reactions on messages that
are not the bot's cost nothing."""

from __future__ import annotations

import asyncio

import pytest

from imagine import keys, limits, moderation
from tests.bot.fixtures import Front
from tests.bot.test_generation import imagine

pytestmark = pytest.mark.asyncio


async def test_reactions_on_messages_that_are_not_the_bots_read_nothing_from_redis(front: Front) -> None:
    fake, scene = front.fake, front.scene
    looked: list[int] = []
    real = front.bot.store.job_for_message

    async def counting(message_id: int) -> str | None:
        looked.append(message_id)
        return await real(message_id)

    front.bot.store.job_for_message = counting  # type: ignore[method-assign]
    other = await fake.create_member(scene.guild.id, "someone-else", bot=True)
    theirs = await fake.post_message(scene.channel.id, other.id, "hello")
    mine = await fake.post_message(scene.channel.id, scene.alice.id, "me too")
    for message in (theirs, mine):
        for emoji in ("🔄", "❌", "1️⃣"):
            await fake.react(message.id, emoji, user_id=scene.bob.id)
    inter = await imagine(front, "after the reactions")  # the bot has handled the events before this one
    await front.work()
    await asyncio.sleep(0.5)
    assert looked == []
    result = await fake.wait_for(lambda: (m := fake.message(inter.original_message_id or 0)).components and m, what="r")
    await fake.react(result.id, "❌", user_id=scene.alice.id)  # its own message: looked up, and acted on
    await fake.wait_for(lambda: fake.message(result.id).deleted, what="the delete")
    assert set(looked) == {result.id}  # (the queue cog's ❌ looks too: a pending job's message is cancelled)


async def test_a_refused_reaction_posts_nothing_and_is_noted(front: Front) -> None:
    fake, scene = front.fake, front.scene
    inter = await imagine(front, "reacted on")
    await front.work()
    result = await fake.wait_for(lambda: (m := fake.message(inter.original_message_id or 0)).components and m, what="r")
    moderation.block(front.conn, scene.guild.id, scene.bob.id)
    await fake.react(result.id, "🔄", user_id=scene.bob.id)
    await fake.wait_for(lambda: moderation.history(front.conn, scene.guild.id), what="the moderator log entry")
    await asyncio.sleep(0.5)
    posted = [m for m in fake.messages(scene.channel.id, include_deleted=True) if m.id > result.id]
    assert posted == []  # no status message posted, none posted and deleted
    entry = moderation.history(front.conn, scene.guild.id)[0]
    assert (entry.actor, entry.action) == (scene.bob.id, "was refused") and "reaction: blocked" in entry.detail
    # A second try within the minute is refused just the same, and not noted again.
    await fake.react(result.id, "1️⃣", user_id=scene.bob.id)
    await asyncio.sleep(0.5)
    assert len(moderation.history(front.conn, scene.guild.id)) == 1
    assert front.conn.exists(keys.guild(scene.guild.id, f"noted:{scene.bob.id}:blocked"))


async def test_a_reaction_over_a_counting_limit_posts_nothing(front: Front) -> None:
    """The counting limits are looked at before a reaction's public status message: none is posted and deleted."""
    fake, scene = front.fake, front.scene
    inter = await imagine(front, "reacted on")
    await front.work()
    result = await fake.wait_for(lambda: (m := fake.message(inter.original_message_id or 0)).components and m, what="r")
    limits.store(front.conn, scene.guild.id, "member_active", 1)
    await imagine(front, "bob's one job", user=scene.bob.id)  # waits: bob is at his limit of one
    before = {m.id for m in fake.messages(scene.channel.id, include_deleted=True)}
    await fake.react(result.id, "🔄", user_id=scene.bob.id)
    await asyncio.sleep(1.0)
    posted = [m for m in fake.messages(scene.channel.id, include_deleted=True) if m.id not in before]
    assert posted == []
    assert front.conn.zcard(keys.member(scene.guild.id, scene.bob.id, "active")) == 1
