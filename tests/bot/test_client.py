"""The bot as a whole: what it imports, how it syncs, its intents, and the one error map."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
from discord import app_commands

from bot import client, sync
from bot.client import intents
from bot.errors import JobGone, NotAllowed, Refusal, expected, explain
from bot.flags import FlagError
from imagine import keys
from imagine.contract import SpecError
from tests.bot.fixtures import front_settings, running
from tests.helpers import ROOT
from tests.support.scenario import FakeDiscord


def test_the_bot_never_imports_torch_diffusers_or_the_worker() -> None:
    code = (
        "import sys, bot.client, bot.launcher, bot.views, bot.actions\n"
        "for name in ('bot.cogs.generation', 'bot.cogs.results', 'bot.cogs.preferences', 'bot.cogs.help'):\n"
        "    __import__(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'diffusers', 'transformers', 'worker',"
        " 'models'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_intents_are_minimal_and_not_privileged() -> None:
    wanted = intents()
    assert wanted.guilds and wanted.guild_reactions
    assert not (wanted.members or wanted.presences or wanted.message_content or wanted.guild_messages)


def test_error_map_speaks_plainly() -> None:
    assert explain(SpecError("steps", "must be at most 60")) == "⚠️ steps must be at most 60."
    assert explain(SpecError("negative_prompt", "is longer than 10 characters")).startswith("⚠️ the negative")
    assert explain(FlagError("`--ar 0:0` nope")) == "`--ar 0:0` nope"
    assert explain(Refusal("no such model")) == "no such model"
    assert "too old" in explain(JobGone())
    assert explain(NotAllowed("only moderators.")) == "only moderators."
    assert "queue cannot be reached" in explain(redis.ConnectionError("down"))
    assert "logged" in explain(RuntimeError("boom"))
    wrapped = app_commands.CommandInvokeError.__new__(app_commands.CommandInvokeError)
    wrapped.original = Refusal("inner")
    assert explain(wrapped) == "inner" and expected(wrapped)
    assert not expected(RuntimeError("boom"))


GLOBAL_COMMANDS = "/applications/{application_id}/commands"

EXTRA_EXTENSION = """
from discord import app_commands


@app_commands.command(name="ping")
async def ping(interaction):
    \"\"\"Says pong.\"\"\"


async def setup(bot):
    bot.tree.add_command(ping)
"""


@pytest.mark.asyncio
async def test_global_commands_sync_on_deploy_only_when_they_changed(
    discord_patched: FakeDiscord,
    redis_url: str,
    data_dir: Path,
    tiny_registry: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = discord_patched
    scene = await fake.default_scene()
    settings = front_settings(redis_url, data_dir, fake, scene, tiny_registry, dev_guild_id=None)

    def global_syncs() -> int:
        return len(fake.calls_to("PUT", GLOBAL_COMMANDS))

    # First deploy: nothing synced yet, so the global commands are (one PUT), and their hash is kept in Redis.
    async with running(settings, fake) as bot:
        await fake.wait_for_commands("imagine", "settings", "help")
        application_id = bot.application_id
    assert global_syncs() == 1 and fake.commands(scene.guild.id) == []
    conn = redis.Redis.from_url(redis_url)
    first = conn.get(keys.synced_commands(application_id))
    assert first is not None and len(first) == 64
    # A restart with the same commands sends nothing.
    async with running(settings, fake):
        pass
    assert global_syncs() == 1
    # A deploy with a new command syncs once more, then not again.
    (tmp_path / "extra_commands.py").write_text(EXTRA_EXTENSION)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr("bot.client.EXTENSIONS", (*client.EXTENSIONS, "extra_commands"))
    async with running(settings, fake):
        await fake.wait_for_commands("ping")
    assert global_syncs() == 2 and conn.get(keys.synced_commands(application_id)) != first
    async with running(settings, fake):
        pass
    assert global_syncs() == 2
    # --sync-global syncs whatever the hash says.
    async with running(settings, fake, sync_global=True):
        pass
    assert global_syncs() == 3
    conn.close()


@pytest.mark.asyncio
async def test_a_development_server_gets_the_commands_at_every_start_and_global_ones_are_left_alone(
    discord_patched: FakeDiscord, redis_url: str, data_dir: Path, tiny_registry: Path
) -> None:
    fake = discord_patched
    scene = await fake.default_scene()
    settings = front_settings(redis_url, data_dir, fake, scene, tiny_registry)
    guild_route = "/applications/{application_id}/guilds/{guild_id}/commands"
    for start in (1, 2):
        async with running(settings, fake):
            await fake.wait_for_commands("imagine", "settings", "help", guild_id=scene.guild.id)
        assert len(fake.calls_to("PUT", guild_route)) == start
    assert fake.calls_to("PUT", GLOBAL_COMMANDS) == [] and fake.commands(None) == []


def test_the_commands_hash_follows_the_payload_not_its_order() -> None:
    one: list[dict[str, Any]] = [{"name": "b", "options": [], "type": 1}, {"name": "a", "description": "x"}]
    same: list[dict[str, Any]] = [{"description": "x", "name": "a"}, {"type": 1, "options": [], "name": "b"}]
    assert sync.digest(sorted(one, key=lambda c: c["name"])) == sync.digest(sorted(same, key=lambda c: c["name"]))
    assert sync.digest(one) != sync.digest([{**one[0], "description": "new"}, one[1]])


@pytest.mark.asyncio
async def test_an_unexpected_error_is_logged_with_its_traceback_and_answered_briefly(
    discord_patched: FakeDiscord,
    redis_url: str,
    data_dir: Path,
    tiny_registry: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = discord_patched
    scene = await fake.default_scene()
    settings = front_settings(redis_url, data_dir, fake, scene, tiny_registry)
    async with running(settings, fake) as bot:
        await fake.wait_for_commands("imagine", guild_id=scene.guild.id)

        async def broken(*args: object, **kwargs: object) -> None:
            raise RuntimeError("the secret internals")

        bot.jobs.spec_from_request = broken
        inter = await fake.wait_for_ack(
            await fake.slash("imagine", channel_id=scene.channel.id, user_id=scene.alice.id, options={"prompt": "x"})
        )
        answer = await fake.wait_for(
            lambda: next((fake.message(m) for m in inter.followup_ids if fake.message(m).ephemeral), None),
            what="the answer",
        )
    assert "something went wrong" in answer.content and "secret" not in answer.content
    logged = [r for r in caplog.records if r.levelname == "ERROR" and r.exc_info]
    assert logged and "the secret internals" in str(logged[0].exc_info[1])
