"""The bot as a whole: what it imports, how it syncs, its intents, and the one error map."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import redis
from discord import app_commands

from bot.client import intents
from bot.errors import JobGone, NotAllowed, Refusal, expected, explain
from bot.flags import FlagError
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


@pytest.mark.asyncio
async def test_global_sync_only_when_asked(
    discord_patched: FakeDiscord, redis_url: str, data_dir: Path, tiny_registry: Path
) -> None:
    fake = discord_patched
    scene = await fake.default_scene()
    settings = front_settings(redis_url, data_dir, fake, scene, tiny_registry, dev_guild_id=None)
    async with running(settings, fake):
        pass
    assert fake.commands(None) == [] and fake.commands(scene.guild.id) == []
    async with running(settings, fake, sync_global=True):
        await fake.wait_for_commands("imagine", "settings", "help")
    assert fake.commands(scene.guild.id) == []


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
