"""A real discord.py bot against the fake: login, sync, gateway, slash commands, components, modals,
autocomplete, reactions, resume, and refusals (privileged intents, bad token)."""

from __future__ import annotations

import asyncio
import io

import discord
import pytest
from discord import app_commands

from tests.support.scenario import FakeDiscord, Scene
from tests.support_tests.botkit import MiniBot, running_bot

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
CALLBACK = "/interactions/{interaction_id}/{interaction_token}/callback"


def add_imagine(bot: MiniBot) -> None:
    @bot.tree.command()
    @app_commands.describe(prompt="What to draw", count="How many images")
    async def imagine(interaction: discord.Interaction, prompt: str, count: app_commands.Range[int, 1, 4] = 1) -> None:
        """Draw something."""
        await interaction.response.defer(thinking=True)
        bot.seen.append((prompt, count, interaction.filesize_limit))
        await interaction.followup.send(f"drew {prompt} x{count}", file=discord.File(io.BytesIO(PNG), "grid.png"))


@pytest.mark.asyncio
async def test_slash_command_defer_and_followup(fake: FakeDiscord, scene: Scene) -> None:
    async with running_bot(fake, scene, add_imagine) as bot:
        cmd = fake.find_command("imagine", scene.guild.id)
        assert [o["name"] for o in cmd.payload["options"]] == ["prompt", "count"]
        inter = await fake.slash(
            "imagine", channel_id=scene.channel.id, user_id=scene.alice.id, options={"prompt": "a red cube", "count": 2}
        )
        await fake.wait_for_ack(inter)
        msg = await fake.wait_for_message(scene.channel.id, lambda m: m.attachments)
    assert inter.ack_type == 5
    (call,) = fake.calls_to("POST", CALLBACK)
    assert call.json["type"] == 5
    assert call.query.get("with_response") == "1"
    assert bot.seen == [("a red cube", 2, 10 * 1024 * 1024)]
    # the first followup after a deferral replaces the "thinking" message
    assert msg.id == inter.original_message_id and not msg.loading
    assert msg.content == "drew a red cube x2" and msg.attachments[0].data == PNG
    assert msg.attachments[0].content_type == "image/png"
    assert msg.edits[0]["flags"] & 128  # it was loading before


@pytest.mark.asyncio
async def test_buttons_selects_modals_and_autocomplete(fake: FakeDiscord, scene: Scene) -> None:
    class Remix(discord.ui.Modal, title="Remix"):
        prompt: discord.ui.TextInput = discord.ui.TextInput(label="Prompt", custom_id="t:prompt", max_length=200)

        async def on_submit(self, interaction: discord.Interaction) -> None:
            await interaction.response.edit_message(content=f"remixed: {self.prompt.value}")

    class Panel(discord.ui.View):
        def __init__(self) -> None:
            super().__init__(timeout=None)

        @discord.ui.button(label="Remix", custom_id="t:remix")
        async def remix(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
            await interaction.response.send_modal(Remix())

        @discord.ui.select(custom_id="t:pick", options=[discord.SelectOption(label=x) for x in ("a", "b")])
        async def pick(self, interaction: discord.Interaction, select: discord.ui.Select) -> None:
            await interaction.response.send_message(f"picked {select.values[0]}", ephemeral=True)

    def setup(bot: MiniBot) -> None:
        @bot.tree.command()
        @app_commands.describe(model="Model name")
        async def panel(interaction: discord.Interaction, model: str) -> None:
            """Show a panel."""
            await interaction.response.send_message(f"model {model}", view=Panel())

        @panel.autocomplete("model")
        async def complete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
            return [app_commands.Choice(name=m, value=m) for m in ("tiny", "tall") if m.startswith(current)]

    async with running_bot(fake, scene, setup):
        choices = await fake.autocomplete(
            "panel", channel_id=scene.channel.id, user_id=scene.alice.id, focused="model", options={"model": "ti"}
        )
        assert choices == [{"name": "tiny", "value": "tiny"}]
        inter = await fake.slash(
            "panel", channel_id=scene.channel.id, user_id=scene.alice.id, options={"model": "tiny"}
        )
        msg = await fake.wait_for_message(scene.channel.id, lambda m: m.interaction_id == inter.id)
        assert msg.custom_ids() == ["t:remix", "t:pick"]

        pick = await fake.select(msg.id, "t:pick", ["b"], user_id=scene.bob.id)
        await fake.wait_for_ack(pick)
        reply = fake.message(pick.original_message_id)
        assert reply.ephemeral and reply.content == "picked b"

        press = await fake.click(msg.id, "t:remix", user_id=scene.alice.id)
        await fake.wait_for_ack(press)
        assert press.modal is not None and press.modal["title"] == "Remix"
        submit = await fake.submit_modal(press, {"t:prompt": "a blue sphere"})
        await fake.wait_for_ack(submit)
        assert submit.ack_type == 7
        assert fake.message(msg.id).content == "remixed: a blue sphere"
        assert fake.message(msg.id).edits[0]["content"] == "model tiny"

        with pytest.raises(LookupError):
            await fake.click(msg.id, "t:nope", user_id=scene.alice.id)
        with pytest.raises(ValueError):
            await fake.slash("panel", channel_id=scene.channel.id, user_id=scene.alice.id, options={})


@pytest.mark.asyncio
async def test_reactions_replies_and_mentions(fake: FakeDiscord, scene: Scene) -> None:
    def setup(bot: MiniBot) -> None:
        @bot.event
        async def on_raw_reaction_add(payload: discord.RawReactionActionEvent) -> None:
            if payload.user_id == bot.user.id:  # type: ignore[union-attr]
                return
            channel = bot.get_channel(payload.channel_id)
            assert isinstance(channel, discord.TextChannel)
            message = channel.get_partial_message(payload.message_id)
            await message.reply(
                f"<@{payload.user_id}> re-rolling @everyone",
                allowed_mentions=discord.AllowedMentions(
                    users=[discord.Object(payload.user_id)], everyone=False, replied_user=False
                ),
            )
            await message.add_reaction("🔄")

    async with running_bot(fake, scene, setup):
        original = await fake.post_message(scene.channel.id, scene.alice.id, "a cat")
        await fake.react(original.id, "🔄", user_id=scene.alice.id)
        reply = await fake.wait_for_message(scene.channel.id, lambda m: m.message_reference)
        await fake.wait_for(lambda: len(fake.message(original.id).reactions.get("🔄", [])) == 2)
    assert reply.message_reference["message_id"] == original.id and reply.type == 19
    assert reply.mention_user_ids == [scene.alice.id]
    assert not reply.mention_everyone
    assert fake.message(original.id).reactions["🔄"] == [scene.alice.id, fake.world.bot.id]


@pytest.mark.asyncio
async def test_gateway_resume_and_reidentify(fake: FakeDiscord, scene: Scene) -> None:
    async with running_bot(fake, scene, add_imagine) as bot:
        await fake.reconnect_gateway(resume=True)
        await fake.wait_for(lambda: fake.gateway_stats()["resumes"] == 1 and fake.gateway_stats()["connected"])
        inter = await fake.slash(
            "imagine", channel_id=scene.channel.id, user_id=scene.bob.id, options={"prompt": "after resume"}
        )
        await fake.wait_for_ack(inter)
        await fake.reconnect_gateway(resume=False)
        await fake.wait_for(lambda: fake.gateway_stats()["identifies"] == 2 and fake.gateway_stats()["connected"])
        assert bot.is_closed() is False
    assert fake.gateway_stats()["identifies"] == 2


@pytest.mark.asyncio
async def test_privileged_intents_are_refused_unless_enabled(fake: FakeDiscord, scene: Scene) -> None:
    with pytest.raises(discord.PrivilegedIntentsRequired):
        async with running_bot(fake, scene, add_imagine, intents=discord.Intents.all()):
            pass


@pytest.mark.asyncio
async def test_bad_token_fails_login(fake: FakeDiscord) -> None:
    client = discord.Client(intents=discord.Intents.none())
    with pytest.raises(discord.LoginFailure):
        await client.login("not-the-token")
    await client.close()
    assert any("401" in e for e in fake.take_errors())


@pytest.mark.asyncio
async def test_member_permissions_reach_the_bot(fake: FakeDiscord, scene: Scene) -> None:
    seen: list[tuple[bool, bool]] = []

    def setup(bot: MiniBot) -> None:
        @bot.tree.command()
        @app_commands.default_permissions(manage_messages=True)
        async def purge(interaction: discord.Interaction) -> None:
            """Moderators only."""
            perms = interaction.permissions
            seen.append((perms.manage_messages, interaction.app_permissions.attach_files))
            await interaction.response.send_message("ok", ephemeral=True)

    async with running_bot(fake, scene, setup):
        with pytest.raises(PermissionError):
            await fake.slash("purge", channel_id=scene.channel.id, user_id=scene.alice.id)
        inter = await fake.slash("purge", channel_id=scene.channel.id, user_id=scene.mod.id)
        await fake.wait_for_ack(inter)
    assert seen == [(True, True)]


@pytest.mark.asyncio
async def test_interaction_waits_are_bounded(fake: FakeDiscord, scene: Scene) -> None:
    with pytest.raises(TimeoutError):
        await fake.wait_for_bot(timeout=0.2)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(fake.wait_for_message(scene.channel.id, timeout=0.2), 2)
