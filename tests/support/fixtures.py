"""pytest fixtures for the fake Discord. Use from a conftest with
`from tests.support.fixtures import fake_discord, discord_patched  # noqa: F401`.

Every test that uses `fake_discord` fails at teardown if the fake saw a request Discord would reject
(spec violation, bad auth, unimplemented route): call `fake.take_errors()` in tests that provoke one on purpose.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.support import discord_patch
from tests.support.scenario import FakeDiscord

REPO = Path(__file__).resolve().parents[2]


@pytest_asyncio.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    """A fresh fake on a free port, in the test's event loop."""
    async with FakeDiscord() as fake:
        yield fake
        fake.assert_clean()


@pytest.fixture
def discord_patched(fake_discord: FakeDiscord) -> Iterator[FakeDiscord]:
    """The fake, with this process's discord.py pointed at it (restored afterwards)."""
    discord_patch.apply(fake_discord.api_base, fake_discord.gateway_url)
    yield fake_discord
    discord_patch.restore()


def start_fake_process(*args: str, timeout: float = 30.0) -> tuple[subprocess.Popen[str], dict]:
    """Start `python -m tests.support.fake_discord` and return (process, the JSON line it printed)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fake_discord", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise RuntimeError("fake discord process exited before printing its URLs")
    return proc, json.loads(line)
