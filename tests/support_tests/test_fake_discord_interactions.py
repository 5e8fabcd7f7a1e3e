"""More interaction shapes through discord.py: attachment options read from the fake CDN, ephemeral deferrals
edited through the async webhook adapter, and modals built from labels (text input and select)."""

from __future__ import annotations

import discord
import pytest
from discord import app_commands

from tests.support.actions import Upload
from tests.support.scenario import FakeDiscord, Scene
from tests.support_tests.botkit import MiniBot, running_bot

JPEG = b"\xff\xd8\xff\xe0" + b"\0" * 100


@pytest.mark.asyncio
async def test_attachment_option_and_ephemeral_defer(fake: FakeDiscord, scene: Scene) -> None:
    read: list[tuple[str, str | None, bytes]] = []

    def setup(bot: MiniBot) -> None:
        @bot.tree.command()
        @app_commands.describe(image="Start from this image")
        async def vary(interaction: discord.Interaction, image: discord.Attachment) -> None:
            """Vary an image."""
            await interaction.response.defer(ephemeral=True, thinking=True)
            read.append((image.filename, image.content_type, await image.read()))
            await interaction.edit_original_response(content=f"read {image.size} bytes")

    async with running_bot(fake, scene, setup):
        inter = await fake.slash(
            "vary", channel_id=scene.channel.id, user_id=scene.alice.id, options={"image": Upload("in.jpg", JPEG)}
        )
        msg = await fake.wait_for_message(scene.channel.id, lambda m: m.content.startswith("read"))
    assert read == [("in.jpg", "image/jpeg", JPEG)]
    assert msg.id == inter.original_message_id and msg.ephemeral and msg.content == "read 104 bytes"


@pytest.mark.asyncio
async def test_modal_with_labels(fake: FakeDiscord, scene: Scene) -> None:
    got: list[tuple[str, list[str]]] = []

    class Settings(discord.ui.Modal, title="Settings"):
        steps = discord.ui.Label(text="Steps", component=discord.ui.TextInput(custom_id="s:steps", required=False))
        aspect = discord.ui.Label(
            text="Aspect",
            component=discord.ui.Select(
                custom_id="s:aspect", options=[discord.SelectOption(label=x) for x in ("1:1", "16:9")]
            ),
        )

        async def on_submit(self, interaction: discord.Interaction) -> None:
            steps, aspect = self.steps.component, self.aspect.component
            assert isinstance(steps, discord.ui.TextInput) and isinstance(aspect, discord.ui.Select)
            got.append((steps.value, aspect.values))
            await interaction.response.send_message("saved", ephemeral=True)

    def setup(bot: MiniBot) -> None:
        @bot.tree.command()
        async def settings(interaction: discord.Interaction) -> None:
            """Your defaults."""
            await interaction.response.send_modal(Settings())

    async with running_bot(fake, scene, setup):
        opened = await fake.wait_for_ack(
            await fake.slash("settings", channel_id=scene.channel.id, user_id=scene.bob.id)
        )
        with pytest.raises(LookupError):
            await fake.submit_modal(opened, {"s:nope": "1"})
        submitted = await fake.submit_modal(opened, {"s:steps": "30", "s:aspect": ["16:9"]})
        await fake.wait_for_ack(submitted)
    assert got == [("30", ["16:9"])]
    assert fake.message(submitted.original_message_id).content == "saved"


@pytest.mark.asyncio
async def test_deferred_update_then_edit_original_edits_the_clicked_message(fake: FakeDiscord, scene: Scene) -> None:
    class Done(discord.ui.View):
        def __init__(self) -> None:
            super().__init__(timeout=None)

        @discord.ui.button(label="Upscale", custom_id="u:1")
        async def upscale(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
            await interaction.response.defer()
            await interaction.edit_original_response(content="upscaling…", view=None)

    def setup(bot: MiniBot) -> None:
        @bot.tree.command()
        async def grid(interaction: discord.Interaction) -> None:
            """Post a grid."""
            await interaction.response.send_message("grid", view=Done())

    async with running_bot(fake, scene, setup):
        shown = await fake.wait_for_ack(await fake.slash("grid", channel_id=scene.channel.id, user_id=scene.alice.id))
        press = await fake.click(shown.original_message_id, "u:1", user_id=scene.alice.id)
        msg = await fake.wait_for_message(scene.channel.id, lambda m: m.content == "upscaling…")
    assert press.ack_type == 6 and msg.id == shown.original_message_id and msg.components == []
    assert len(fake.messages(scene.channel.id)) == 1
