"""The interaction webhook as a synchronous worker uses it (`discord.SyncWebhook` from a plain thread), and the
interaction timing rules: 3 s to acknowledge, one acknowledgement, tokens that die after 15 minutes."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable

import aiohttp
import discord
import pytest
from discord import app_commands

from tests.support.scenario import FakeDiscord, Scene
from tests.support.state import Interaction
from tests.support_tests.botkit import MiniBot, running_bot

PNG = b"\x89PNG\r\n\x1a\n" + b"\1" * 64


def deferring_bot(
    gate: asyncio.Event | None = None, errors: list[BaseException] | None = None
) -> Callable[[MiniBot], None]:
    """A bot whose /imagine defers (after `gate` opens, if given) and records any error."""

    def setup(bot: MiniBot) -> None:
        @bot.tree.command()
        @app_commands.describe(prompt="What to draw")
        async def imagine(interaction: discord.Interaction, prompt: str) -> None:
            """Draw something."""
            if gate is not None:
                await gate.wait()
            try:
                await interaction.response.defer(thinking=True)
            except discord.HTTPException as exc:
                if errors is not None:
                    errors.append(exc)

    return setup


async def deferred(fake: FakeDiscord, scene: Scene) -> Interaction:
    inter = await fake.slash(
        "imagine", channel_id=scene.channel.id, user_id=scene.alice.id, options={"prompt": "a cube"}
    )
    return await fake.wait_for_ack(inter)


@pytest.mark.asyncio
async def test_sync_webhook_edits_original_and_sends_followup_with_file(fake: FakeDiscord, scene: Scene) -> None:
    async with running_bot(fake, scene, deferring_bot()):
        inter = await deferred(fake, scene)

        def worker() -> tuple[int, int]:
            hook = discord.SyncWebhook.partial(fake.application_id, inter.token)
            edited = hook.edit_message("@original", content="generating 12/20")  # type: ignore[arg-type]
            sent = hook.send(
                "done",
                file=discord.File(io.BytesIO(PNG), "grid.png"),
                wait=True,
                allowed_mentions=discord.AllowedMentions.none(),
            )
            return edited.id, sent.id

        edited_id, sent_id = await asyncio.to_thread(worker)
    original = fake.message(inter.original_message_id)
    assert edited_id == original.id and original.content == "generating 12/20" and not original.loading
    followup = fake.message(sent_id)
    assert followup.content == "done" and followup.attachments[0].data == PNG
    assert followup.interaction_id == inter.id and followup.webhook_id == fake.application_id
    patch = fake.calls_to("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/@original")
    assert patch and patch[0].authorized is False  # the token in the path is the credential


@pytest.mark.asyncio
async def test_expired_token_gives_50027(fake: FakeDiscord, scene: Scene) -> None:
    async with running_bot(fake, scene, deferring_bot()):
        inter = await deferred(fake, scene)
        await fake.advance_clock(15 * 60 + 1)

        def worker() -> None:
            discord.SyncWebhook.partial(fake.application_id, inter.token).send("too late", wait=True)

        with pytest.raises(discord.HTTPException) as info:
            await asyncio.to_thread(worker)
    assert info.value.status == 401 and info.value.code == 50027


@pytest.mark.asyncio
async def test_acknowledging_after_three_seconds_gives_10062(fake: FakeDiscord, scene: Scene) -> None:
    gate, errors = asyncio.Event(), []
    async with running_bot(fake, scene, deferring_bot(gate, errors)):
        inter = await fake.slash(
            "imagine", channel_id=scene.channel.id, user_id=scene.alice.id, options={"prompt": "slow"}
        )
        await fake.advance_clock(3.5)
        gate.set()
        await fake.wait_for_call("POST", "/interactions/{interaction_id}/{interaction_token}/callback")
    assert not fake.interaction(inter.id).acked
    assert [(e.status, e.code) for e in errors] == [(404, 10062)]  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_second_acknowledgement_gives_40060(fake: FakeDiscord, scene: Scene) -> None:
    async with running_bot(fake, scene, deferring_bot()):
        inter = await deferred(fake, scene)
    url = f"{fake.api_base}/interactions/{inter.id}/{inter.token}/callback"
    async with aiohttp.ClientSession() as session, session.post(url, json={"type": 5}) as response:
        body = await response.json()
    assert response.status == 400 and body["code"] == 40060


@pytest.mark.asyncio
async def test_followup_before_acknowledgement_is_unknown_webhook(fake: FakeDiscord, scene: Scene) -> None:
    gate: asyncio.Event = asyncio.Event()
    async with running_bot(fake, scene, deferring_bot(gate)):
        inter = await fake.slash(
            "imagine", channel_id=scene.channel.id, user_id=scene.alice.id, options={"prompt": "early"}
        )

        def worker() -> None:
            discord.SyncWebhook.partial(fake.application_id, inter.token).send("early", wait=True)

        with pytest.raises(discord.NotFound) as info:
            await asyncio.to_thread(worker)
        gate.set()
        await fake.wait_for_ack(inter)
    assert info.value.code == 10015


@pytest.mark.asyncio
async def test_unknown_callback_type_is_rejected_by_the_spec(fake: FakeDiscord) -> None:
    url = f"{fake.api_base}/interactions/1/some-token/callback"
    async with aiohttp.ClientSession() as session, session.post(url, json={"type": 42}) as response:
        body = await response.json()
    assert response.status == 400 and body["code"] == 50035
    (error,) = fake.take_errors()
    assert "spec violation" in error and "type" in error


@pytest.mark.asyncio
async def test_sync_webhook_retries_a_429(fake: FakeDiscord, scene: Scene) -> None:
    async with running_bot(fake, scene, deferring_bot()):
        inter = await deferred(fake, scene)
        fault = fake.fail_next("/webhooks/{webhook_id}/{webhook_token}/messages/@original", retry_after=0.05)

        def worker() -> None:
            discord.SyncWebhook.partial(fake.application_id, inter.token).edit_message(
                "@original", content="after a 429"
            )  # type: ignore[arg-type]

        await asyncio.to_thread(worker)
    assert fault.hits == 1
    assert fake.message(inter.original_message_id).content == "after a 429"
    statuses = [c.status for c in fake.calls_to("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/@original")]
    assert statuses == [429, 200]
