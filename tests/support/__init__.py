"""Test support: a fake of Discord's gateway and REST API that discord.py talks to over real sockets.

In-process (`FakeDiscord`, async), in a background thread (`FakeDiscordThread`), or as a process
(`python -m tests.support.fake_discord`, driven by `RemoteFakeDiscord`). `discord_patch.apply()` points
discord.py at it. See tests/support/README.md.
"""

from __future__ import annotations

from tests.support.actions import Upload
from tests.support.control import RemoteFakeDiscord
from tests.support.scenario import FakeDiscord, Scene
from tests.support.threaded import FakeDiscordThread

__all__ = ["FakeDiscord", "FakeDiscordThread", "RemoteFakeDiscord", "Scene", "Upload"]
