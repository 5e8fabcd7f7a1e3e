"""End to end: the fake Discord in the test's event loop, and a real worker process and a real bot process
(`imagine worker`, `imagine bot`) talking to it over sockets and to a real Redis, exactly as deployed.

One stack per test session (processes take seconds to start); every test gets its own channel and members in the
stack's server, so tests do not see each other's messages. Any request the fake had to reject fails the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import pytest_asyncio
import redis

from tests.e2e.plain_model import build_plain
from tests.helpers import ROOT, invite_permissions
from tests.support import permissions as P
from tests.support.scenario import FakeDiscord
from tests.support.state import Guild, Interaction, Member, Message, Role

T = TypeVar("T")

E2E_DB = 7
#: Seconds between status edits in these tests (2 s in production): short, so a short job shows several.
PROGRESS_INTERVAL = 0.3
STRENGTH = 0.5

REGISTRY = """\
default = "tiny"
default_clip = "tiny-clips"

[models.tiny]
description = "tiny random test pipeline"
source = "tiny"
nsfw = "allow"  # random weights: noise, and no safety checker to screen it
family = "sd"
width = 32
height = 32
steps = 4
guidance = 4.0
sampler = "dpm++_2m"
display_scale = 4

[models.tiny-clips]
description = "tiny random clip pipeline"
source = "tiny"
nsfw = "allow"  # random weights: noise, and no safety checker to screen it
family = "text-to-video-sd"
width = 32
height = 32
frames = 8
fps = 8
steps = 4
guidance = 4.0
sampler = "dpm++_2m"
display_scale = 4

[models.plain]
description = "test pipeline whose pictures keep their composition through image-to-image"
source = "local"
path = "{plain}"
nsfw = "allow"  # random weights: noise, and no safety checker to screen it
family = "sd"
width = 32
height = 32
steps = 4
guidance = 4.0
sampler = "dpm++_2m"
display_scale = 4
"""


def with_db(url: str, db: int) -> str:
    base, _, last = url.rpartition("/")
    return f"{base}/{db}" if last.isdigit() and base.count("/") >= 2 else f"{url.rstrip('/')}/{db}"


class Proc:
    """A child process whose output goes to a file the tests show when something fails."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name, self.argv, self.env = name, argv, env
        self.log = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT)

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        for _ in range(int(timeout * 10)):
            if self.proc.poll() is not None:
                return self.proc.returncode
            await asyncio.sleep(0.1)
        self.proc.kill()
        return self.proc.wait()

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return f"--- {self.name} ---\n" + "\n".join(text[-lines:])


@dataclass
class Scene:
    channel_id: int
    alice: Member
    bob: Member
    mod: Member


@dataclass
class Stack:
    fake: FakeDiscord
    guild: Guild
    mod_role: Role
    redis_url: str
    conn: redis.Redis
    worker: Proc
    bot: Proc

    def logs(self) -> str:
        return self.worker.tail() + "\n" + self.bot.tail()

    async def wait(self, check: Callable[[], T], what: str, timeout: float = 60.0) -> T:
        try:
            return await self.fake.wait_for(check, timeout=timeout, what=what)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}\n{self.logs()}") from None

    async def start_bot(self) -> None:
        self.bot.start()
        await self.wait(lambda: any(s.connected for s in self.fake.gateway.live_sessions()), "the bot to connect")

    async def restart_bot(self, sig: int = signal.SIGTERM) -> None:
        await self.bot.stop(sig)
        await self.start_bot()

    async def scene(self) -> Scene:
        fake = self.fake
        channel = await fake.create_channel(self.guild.id, f"test-{len(self.guild.channel_ids)}")
        # The bot has exactly what the README's invite link asks for, whatever @everyone may do here: a permission
        # that delivery needs and the link lacks fails these tests.
        await fake.set_overwrite(channel.id, fake.world.bot.id, member=True, deny=P.ALL & ~invite_permissions())
        n = len(self.guild.member_ids)
        alice = await fake.create_member(self.guild.id, f"alice{n}")
        bob = await fake.create_member(self.guild.id, f"bob{n}")
        mod = await fake.create_member(self.guild.id, f"mod{n}", roles=[self.mod_role.id])
        return Scene(channel.id, alice, bob, mod)

    # -- reading results --------------------------------------------------------------------------------------

    async def result_of(self, message_id: int, timeout: float = 60.0) -> Message:
        """The message once it shows a result (our buttons and an image)."""

        def done() -> Message | None:
            msg = self.fake.message(message_id)
            return msg if msg.attachments and any(c.startswith("imagine:r:") for c in msg.custom_ids()) else None

        return await self.wait(done, f"a result on message {message_id}", timeout)

    async def imagine(self, scene: Scene, prompt: str, user: Member | None = None, **options: Any) -> Message:
        """Run /imagine as `user` (alice by default) and return the finished result message."""
        inter = await self.fake.slash(
            "imagine",
            channel_id=scene.channel_id,
            user_id=(user or scene.alice).id,
            options={"prompt": prompt, **options},
        )
        return await self.answered(inter)

    async def answered(self, inter: Interaction, timeout: float = 60.0) -> Message:
        inter = await self.fake.wait_for_ack(inter, timeout=10)
        assert inter.original_message_id is not None
        return await self.result_of(inter.original_message_id, timeout)


def png_parameters(data: bytes) -> str | None:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return getattr(image, "text", {}).get("parameters")


@pytest.fixture(scope="session")
def e2e_registry(tmp_path_factory: pytest.TempPathFactory, data_dir: Path, tiny_dir: Path) -> Path:
    plain = build_plain(tiny_dir, data_dir / "models" / "plain")
    path = tmp_path_factory.mktemp("e2e") / "registry.toml"
    path.write_text(REGISTRY.format(plain=plain))
    return path


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def stack(
    redis_server: str, data_dir: Path, e2e_registry: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    url = with_db(redis_server, E2E_DB)
    conn = redis.Redis.from_url(url)
    conn.flushdb()
    log_dir = tmp_path_factory.mktemp("e2e-logs")
    async with FakeDiscord() as fake:
        guild = await fake.create_guild("E2E", channels=("general",), bot_permissions=invite_permissions())
        mod_role = await fake.create_role(guild.id, "Moderator", P.MANAGE_MESSAGES)
        env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGINE_") and k != "REDIS_URL"}
        env.update(
            REDIS_URL=url,
            DISCORD_TOKEN=fake.token,
            IMAGINE_DISCORD_API_BASE=fake.api_base,
            IMAGINE_DEV_GUILD_ID=str(guild.id),
            IMAGINE_DATA_DIR=str(data_dir),
            IMAGINE_REGISTRY_FILE=str(e2e_registry),
            IMAGINE_PROGRESS_INTERVAL=str(PROGRESS_INTERVAL),
            IMAGINE_VARIATION_STRENGTH=str(STRENGTH),
            IMAGINE_TORCH_THREADS="1",
            IMAGINE_PREVIEW_EVERY="2",
            IMAGINE_PREVIEW_SIZE="32",
            IMAGINE_HEARTBEAT_INTERVAL="1",
            IMAGINE_MAINTENANCE_INTERVAL="2",
            HF_HUB_OFFLINE="1",
            OMP_NUM_THREADS="1",
            PYTHONUNBUFFERED="1",
        )
        argv = [sys.executable, "-m", "imagine", "-v"]
        worker = Proc("worker", [*argv, "worker", "--preload", "tiny"], env, log_dir)
        bot = Proc("bot", [*argv, "bot"], env, log_dir)
        stack = Stack(fake, guild, mod_role, url, conn, worker, bot)
        worker.start()
        try:
            await stack.start_bot()
            await stack.wait(
                lambda: {c.name for c in fake.commands(guild.id)} >= {"imagine", "settings", "help"},
                "commands synced to the development server",
            )
            await stack.wait(
                lambda: conn.hexists("imagine:models", "tiny") and _worker_ready(conn),
                "the worker to advertise its models and listen",
                timeout=120,
            )
            yield stack
        finally:
            with contextlib.suppress(Exception):
                await bot.stop()
            with contextlib.suppress(Exception):
                await worker.stop()
            conn.close()


def _worker_ready(conn: redis.Redis) -> bool:
    from rq import Worker

    return any(w.get_state() in ("idle", "busy") for w in Worker.all(connection=conn))


@pytest_asyncio.fixture(loop_scope="session")
async def scene(stack: Stack) -> AsyncIterator[Scene]:
    """A fresh channel with alice, bob and a moderator; fails the test if the fake rejected any request."""
    stack.fake.take_errors()
    yield await stack.scene()
    errors = stack.fake.take_errors()
    assert not errors, "fake Discord saw invalid requests:\n  " + "\n  ".join(errors) + "\n" + stack.logs()
