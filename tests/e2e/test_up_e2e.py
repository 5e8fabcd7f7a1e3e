"""`imagine up`: embedded Redis (no REDIS_URL), a worker and the bot from one command; Ctrl-C stops them all."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from tests.e2e.conftest import _worker_ready
from tests.helpers import ROOT
from tests.support.scenario import FakeDiscord

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]


def children_of(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def test_up_runs_everything_and_ctrl_c_stops_it_all(data_dir: Path, e2e_registry: Path, tmp_path: Path) -> None:
    up_data = tmp_path / "data"
    (up_data / "models").mkdir(parents=True)
    (up_data / "models" / "tiny").symlink_to(data_dir / "models" / "tiny")
    async with FakeDiscord() as fake:
        guild = await fake.create_guild("Up", channels=("general",))
        alice = await fake.create_member(guild.id, "alice")
        env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGINE_") and k != "REDIS_URL"}
        env.update(
            DISCORD_TOKEN=fake.token,
            IMAGINE_DISCORD_API_BASE=fake.api_base,
            IMAGINE_DEV_GUILD_ID=str(guild.id),
            IMAGINE_DATA_DIR=str(up_data),
            IMAGINE_REGISTRY_FILE=str(e2e_registry),
            IMAGINE_TORCH_THREADS="1",
            HF_HUB_OFFLINE="1",
            OMP_NUM_THREADS="1",
        )
        log = open(tmp_path / "up.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "imagine", "up", "--workers", "1"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            await fake.wait_for_bot(timeout=60)
            await fake.wait_for_commands("imagine", guild_id=guild.id, timeout=30)
            info = json.loads((up_data / "redis" / "server.json").read_text())
            conn = redis.Redis.from_url(info["url"])
            for _ in range(600):
                if _worker_ready(conn):
                    break
                await asyncio.sleep(0.1)
            inter = await fake.slash(
                "imagine",
                channel_id=guild.channel_ids[0],
                user_id=alice.user_id,
                options={"prompt": "up and running --steps 2"},
            )
            inter = await fake.wait_for_ack(inter)
            await fake.wait_for(
                lambda: fake.message(inter.original_message_id or 0).attachments,
                timeout=60,
                what="a result made by `imagine up`",
            )
            conn.close()
            children = children_of(proc.pid)
            assert len(children) >= 3, children  # Redis, a worker, the bot

            proc.send_signal(signal.SIGINT)  # what Ctrl-C does
            for _ in range(300):
                if proc.poll() is not None:
                    break
                await asyncio.sleep(0.1)
            assert proc.returncode == 0, (tmp_path / "up.log").read_text()[-3000:]
            assert not [pid for pid in children if alive(pid)]
            assert not (up_data / "redis" / "server.json").exists()
            await fake.wait_for(lambda: not any(s.connected for s in fake.gateway.live_sessions()), what="bot gone")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
