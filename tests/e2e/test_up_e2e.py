"""`imagine up`: embedded Redis (no REDIS_URL), workers and the bot from one command; Ctrl-C stops them all; with
`--devices` each worker runs on its own device and serves its own metrics port."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import IO

import pytest
import redis

from tests.e2e.conftest import _worker_ready
from tests.helpers import ROOT
from tests.support.scenario import FakeDiscord

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]


def up_env(fake: FakeDiscord, guild_id: int, up_data: Path, registry: Path) -> dict[str, str]:
    """`imagine up`'s environment: no REDIS_URL (so it starts its own), the fake Discord, one thread a process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGINE_") and k != "REDIS_URL"}
    env.update(
        DISCORD_TOKEN=fake.token,
        IMAGINE_DISCORD_API_BASE=fake.api_base,
        IMAGINE_DEV_GUILD_ID=str(guild_id),
        IMAGINE_DATA_DIR=str(up_data),
        IMAGINE_REGISTRY_FILE=str(registry),
        IMAGINE_TORCH_THREADS="1",
        HF_HUB_OFFLINE="1",
        OMP_NUM_THREADS="1",
    )
    return env


def start_up(args: list[str], env: dict[str, str], log: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "imagine", "up", *args], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )


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
        env = up_env(fake, guild.id, up_data, e2e_registry)
        log = open(tmp_path / "up.log", "wb")  # noqa: SIM115
        proc = start_up(["--workers", "1"], env, log)
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


def free_port_pair() -> int:
    """A port P with P and P+1 both free now (the two workers' /metrics)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port >= 65535:
            continue
        with socket.socket() as second:
            try:
                second.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two free ports in a row")


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return response.read().decode()


async def test_up_puts_each_worker_on_its_own_device_and_metrics_port(
    data_dir: Path, e2e_registry: Path, tmp_path: Path
) -> None:
    up_data = tmp_path / "data"
    (up_data / "models").mkdir(parents=True)
    (up_data / "models" / "tiny").symlink_to(data_dir / "models" / "tiny")
    base = free_port_pair()
    async with FakeDiscord() as fake:
        guild = await fake.create_guild("Devices", channels=("general",))
        env = up_env(fake, guild.id, up_data, e2e_registry)
        env.update(IMAGINE_WORKER_METRICS_PORT=str(base), IMAGINE_BOT_METRICS_PORT="0")
        log = open(tmp_path / "up.log", "wb")  # noqa: SIM115
        proc = start_up(["--workers", "2", "--devices", "cpu,cpu"], env, log)
        try:
            await fake.wait_for_bot(timeout=60)
            info = json.loads((up_data / "redis" / "server.json").read_text())
            conn = redis.Redis.from_url(info["url"])
            from imagine import status

            for _ in range(900):
                views = status.workers(conn)
                if len(views) == 2 and all(v.info.get("metrics_port") for v in views):
                    break
                await asyncio.sleep(0.1)
            assert len(views) == 2, (tmp_path / "up.log").read_text()[-3000:]
            # Each worker says where it runs and which port it serves; the ports are the base and the next one.
            assert sorted(v.info["metrics_port"] for v in views) == [base, base + 1]
            assert [v.info["device"] for v in views] == ["cpu", "cpu"]
            assert len({v.info["pid"] for v in views}) == 2
            for view in views:
                text = scrape(view.info["metrics_port"])
                labels = f'device="cpu",worker="{view.name}"'
                assert f"imagine_worker_info{{{labels}}} 1.0" in text, text
            status_env = {**env, "REDIS_URL": info["url"]}
            shown = subprocess.run(
                [sys.executable, "-m", "imagine", "status"], cwd=ROOT, env=status_env, capture_output=True, text=True
            )
            assert shown.returncode == 0, shown.stderr
            lines = [ln for ln in shown.stdout.splitlines() if "GiB resident; models:" in ln]
            assert len(lines) == 2 and all("cpu float32" in ln for ln in lines), shown.stdout
            assert {re.search(r"metrics :(\d+)", ln).group(1) for ln in lines} == {str(base), str(base + 1)}  # type: ignore[union-attr]
            conn.close()
            startup = (tmp_path / "up.log").read_text()
            assert f"worker-1 on cpu, metrics :{base}" in startup and f"worker-2 on cpu, metrics :{base + 1}" in startup
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            log.close()
        assert proc.returncode == 0, (tmp_path / "up.log").read_text()[-3000:]
