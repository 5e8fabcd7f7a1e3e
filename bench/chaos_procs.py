"""The chaos run's child processes (`bench/chaos.py`): the bot and the workers as deployed, each logging to a file,
with the environment and the model registry they run with."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from bench.chaos_report import HEARTBEAT_TTL, MAINTENANCE_INTERVAL

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = """\
default = "tiny"

[models.tiny]
description = "tiny random test pipeline"
source = "tiny"
nsfw = "allow"  # random weights: noise, and no safety checker to screen it
family = "sd"
width = 32
height = 32
steps = 2
guidance = 4.0
sampler = "dpm++_2m"
display_scale = 4
"""


class Proc:
    """A child process logging to a file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name, self.argv, self.env, self.log = name, argv, env, log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def child_env(
    redis_url: str, token: str, api_base: str, guild_id: int, data_dir: Path, registry: Path
) -> dict[str, str]:
    """This process's environment without the project's settings, then the chaos run's: short heartbeats and sweeps,
    one thread a worker, the fake Discord and the embedded Redis."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGINE_") and k != "REDIS_URL"}
    env.update(
        REDIS_URL=redis_url,
        DISCORD_TOKEN=token,
        IMAGINE_DISCORD_API_BASE=api_base,
        IMAGINE_DEV_GUILD_ID=str(guild_id),
        IMAGINE_DATA_DIR=str(data_dir),
        IMAGINE_REGISTRY_FILE=str(registry),
        IMAGINE_PROGRESS_INTERVAL="1.0",
        IMAGINE_TORCH_THREADS="1",
        IMAGINE_PREVIEW_EVERY="0",
        IMAGINE_HEARTBEAT_INTERVAL="1",
        IMAGINE_HEARTBEAT_TTL=str(HEARTBEAT_TTL),
        IMAGINE_MAINTENANCE_INTERVAL=str(MAINTENANCE_INTERVAL),
        IMAGINE_BOT_METRICS_PORT="0",
        IMAGINE_WORKER_METRICS_PORT="0",
        HF_HUB_OFFLINE="1",
        OMP_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
    )
    return env
