"""Channel REST rules through discord.py's own HTTP client: validation, limits, permissions, rate limits,
attachments, and what an app without the message content intent may read."""

from __future__ import annotations

import io
import time
from typing import Any

import discord
import pytest
from discord.http import HTTPClient, Route, handle_message_parameters

from tests.support import permissions as P
from tests.support.actions import Upload
from tests.support.scenario import FakeDiscord, Scene

MESSAGES = "/channels/{channel_id}/messages"


async def send(http: HTTPClient, channel_id: int, **kwargs: Any) -> Any:
    with handle_message_parameters(**kwargs) as params:
        return await http.send_message(channel_id, params=params)


@pytest.mark.asyncio
async def test_custom_id_of_101_characters_is_rejected(fake: FakeDiscord, scene: Scene, http: HTTPClient) -> None:
    button = {"type": 2, "style": 1, "label": "go", "custom_id": "x" * 101}
    route = Route("POST", MESSAGES, channel_id=scene.channel.id)
    with pytest.raises(discord.HTTPException) as info:
        await http.request(route, json={"content": "hi", "components": [{"type": 1, "components": [button]}]})
    assert info.value.status == 400 and info.value.code == 50035
    (error,) = fake.take_errors()
    assert "custom_id" in error and "too long" in error
    assert fake.messages(scene.channel.id) == []


@pytest.mark.asyncio
async def test_discord_rules_beyond_the_schema(fake: FakeDiscord, scene: Scene, http: HTTPClient) -> None:
    with pytest.raises(discord.HTTPException) as too_long:
        await send(http, scene.channel.id, content="x" * 2001)
    with pytest.raises(discord.HTTPException) as empty:
        await send(http, scene.channel.id, content="")
    row = {"type": 1, "components": [{"type": 2, "style": 1, "label": str(i), "custom_id": "same"} for i in (1, 2)]}
    with pytest.raises(discord.HTTPException) as duplicate:
        await http.request(Route("POST", MESSAGES, channel_id=scene.channel.id), json={"components": [row]})
    await fake.set_upload_limit(scene.guild.id, 1000)
    with pytest.raises(discord.HTTPException) as too_big:
        await send(http, scene.channel.id, file=discord.File(io.BytesIO(b"\0" * 1001), "big.bin"))
    assert (too_long.value.code, empty.value.code, duplicate.value.code) == (50035, 50006, 50035)
    assert (too_big.value.status, too_big.value.code) == (413, 40005)
    assert fake.take_errors() == []  # Discord-rule refusals are answers, not spec violations


@pytest.mark.asyncio
async def test_reply_with_file_allowed_mentions_and_edits(fake: FakeDiscord, scene: Scene, http: HTTPClient) -> None:
    asked = await fake.post_message(scene.channel.id, scene.alice.id, "make me a cat")
    data = await send(
        http,
        scene.channel.id,
        content=f"<@{scene.alice.id}> here @everyone",
        file=discord.File(io.BytesIO(b"GIF89a..."), "cat.gif"),
        allowed_mentions=discord.AllowedMentions(everyone=False, users=[discord.Object(scene.alice.id)]),
        message_reference=discord.MessageReference(message_id=asked.id, channel_id=scene.channel.id).to_dict(),
    )
    msg = fake.message(int(data["id"]))
    assert msg.mention_user_ids == [scene.alice.id] and not msg.mention_everyone
    assert msg.attachments[0].content_type == "image/gif"
    assert await http.get_from_cdn(msg.attachments[0].url) == b"GIF89a..."
    with handle_message_parameters(content="edited") as params:
        await http.edit_message(scene.channel.id, msg.id, params=params)
    assert msg.content == "edited" and msg.edits[0]["content"].endswith("here @everyone")
    assert msg.attachments[0].filename == "cat.gif"  # kept: discord.py lists it in attachments[]
    await http.delete_message(scene.channel.id, msg.id)
    assert fake.messages(scene.channel.id) == [asked]


@pytest.mark.asyncio
async def test_missing_permissions_give_50013(fake: FakeDiscord, scene: Scene, http: HTTPClient) -> None:
    await fake.set_overwrite(scene.channel.id, fake.world.bot.id, member=True, deny=P.SEND_MESSAGES)
    with pytest.raises(discord.Forbidden) as info:
        await send(http, scene.channel.id, content="hi")
    assert info.value.code == 50013
    other = await fake.post_message(scene.channel.id, scene.alice.id, "mine")
    with pytest.raises(discord.Forbidden):
        await http.delete_message(scene.channel.id, other.id)


@pytest.mark.asyncio
async def test_429_with_retry_after_is_retried(fake: FakeDiscord, scene: Scene, http: HTTPClient) -> None:
    fault = fake.fail_next(MESSAGES, method="POST", count=2, retry_after=0.1)
    started = time.monotonic()
    await send(http, scene.channel.id, content="eventually")
    assert time.monotonic() - started >= 0.2
    assert [c.status for c in fake.calls_to("POST", MESSAGES)] == [429, 429, 200] and fault.remaining == 0
    assert fake.messages(scene.channel.id)[0].content == "eventually"


@pytest.mark.asyncio
async def test_429_without_via_is_taken_for_a_ban(fake: FakeDiscord, scene: Scene, http: HTTPClient) -> None:
    fake.fail_next(MESSAGES, via=False)
    with pytest.raises(discord.HTTPException) as info:
        await send(http, scene.channel.id, content="banned?")
    assert info.value.status == 429


@pytest.mark.asyncio
async def test_5xx_is_retried_and_delay_answers_late(fake: FakeDiscord, scene: Scene, http: HTTPClient) -> None:
    fake.fail_next("/channels/*/messages", status=500)
    await send(http, scene.channel.id, content="after a 500")  # discord.py waits 1 s before retrying
    assert [c.status for c in fake.calls_to("POST", MESSAGES)] == [500, 200]
    fake.fail_next(MESSAGES, status=None, delay=0.3)
    started = time.monotonic()
    await send(http, scene.channel.id, content="late")
    assert time.monotonic() - started >= 0.3


@pytest.mark.asyncio
async def test_message_content_needs_the_intent(fake: FakeDiscord, scene: Scene, http: HTTPClient) -> None:
    posted = await fake.post_message(scene.channel.id, scene.alice.id, "secret", attachments=[Upload("a.txt", b"x")])
    hidden = await http.get_message(scene.channel.id, posted.id)
    assert hidden["content"] == "" and hidden["attachments"] == []
    fake.allowed_privileged_intents = P.ALL  # as if enabled in the developer portal
    shown = await http.get_message(scene.channel.id, posted.id)
    assert shown["content"] == "secret" and shown["attachments"][0]["filename"] == "a.txt"


@pytest.mark.asyncio
async def test_unimplemented_route_is_reported(fake: FakeDiscord, scene: Scene, http: HTTPClient) -> None:
    with pytest.raises(discord.NotFound):
        await http.pin_message(scene.channel.id, 1)
    (error,) = fake.take_errors()
    assert "no route in the fake" in error


@pytest.mark.asyncio
async def test_fetches_discord_py_makes(fake: FakeDiscord, scene: Scene, http: HTTPClient) -> None:
    guild = await http.get_guild(scene.guild.id, with_counts=True)
    assert guild["name"] == "Test Server" and guild["approximate_member_count"] == 5
    member = await http.get_member(scene.guild.id, scene.mod.id)
    assert member["roles"] == [str(scene.moderator_role.id)]
    channel = await http.get_channel(scene.channel.id)
    assert channel["name"] == "general"
    assert (await http.get_user(scene.bob.id))["username"] == "bob"
    assert len(await http.get_all_guild_channels(scene.guild.id)) == 1
    with pytest.raises(discord.NotFound):
        await http.get_member(scene.guild.id, 42)
