"""Helpers for the spine's tests: settings, worker processes, polling. Imported as `tests.helpers`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from imagine.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def invite_permissions() -> int:
    """The permissions integer of the README's invite link (what an owner grants the bot)."""
    import re

    found = re.findall(r"discord\.com/oauth2/authorize\?[^`\s]*permissions=(\d+)", (ROOT / "README.md").read_text())
    assert len(set(found)) == 1, found
    return int(found[0])


def context_with(ctx: Any, redis_url: str, data_dir: Path, **overrides: object) -> Any:
    """A worker context sharing `ctx`'s connection and resident pipelines, with other settings (batch, bf16...)."""
    from worker.context import WorkerContext

    return WorkerContext(
        settings=make_settings(redis_url, data_dir, **overrides),
        conn=ctx.conn,
        registry=ctx.registry,
        pipelines=ctx.pipelines,
        device=ctx.device,
        dtype=ctx.dtype,
        name=ctx.name,
    )


def make_settings(redis_url: str, data_dir: Path, **overrides: object) -> Settings:
    """Settings for tests: no .env, the test Redis and data folder, one torch thread, quick heartbeats."""
    values: dict[str, object] = {
        "redis_url": redis_url,
        "data_dir": data_dir,
        "torch_threads": 1,
        "preview_every": 2,
        "preview_size": 32,
        "heartbeat_interval": 1,
        "heartbeat_ttl": 5,
        "maintenance_interval": 2,
        "job_retries": 2,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def worker_env(redis_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """Environment for an `imagine` subprocess pointed at the test Redis and data folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGINE_") and k != "REDIS_URL"}
    env.update(
        REDIS_URL=redis_url,
        IMAGINE_DATA_DIR=str(data_dir),
        IMAGINE_TORCH_THREADS="1",
        IMAGINE_HEARTBEAT_INTERVAL="1",
        IMAGINE_MAINTENANCE_INTERVAL="2",
        HF_HUB_OFFLINE="1",
        OMP_NUM_THREADS="1",
        # No /metrics endpoints from test processes (they would contend for the default ports).
        IMAGINE_WORKER_METRICS_PORT="0",
        IMAGINE_BOT_METRICS_PORT="0",
    )
    env.update(extra)
    return env


def start_worker(redis_url: str, data_dir: Path, *args: str) -> subprocess.Popen[bytes]:
    """An `imagine worker` process (the real command), logging to a pipe the test can read on failure."""
    return subprocess.Popen(
        [sys.executable, "-m", "imagine", "worker", *args],
        cwd=ROOT,
        env=worker_env(redis_url, data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def wait_for(predicate: Callable[[], object], timeout: float = 60.0, interval: float = 0.1) -> None:
    """Poll `predicate` until it is true, or fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def run_burst(ctx: object, queues: tuple[str, ...] = ("imagine:image",)) -> bool:
    """Run an in-process ImagineWorker until the queues are empty (the CLI does the same)."""
    from worker.worker import ImagineWorker

    return ImagineWorker(list(queues), ctx=ctx).work(burst=True, logging_level="WARNING")  # type: ignore[arg-type]


def events_of(conn: object, job_id: str) -> list[object]:
    """Every progress event a job published so far."""
    from imagine import progress

    return [event for _, event in progress.read(conn, job_id)]  # type: ignore[arg-type]


def classes_loaded_in_a_fresh_process(folder: Path) -> str:
    """ "<pipeline class> <UNet class>" as a new Python loads `folder`: it knows nothing of this project's UNet
    classes, so the registry's loader must import them before diffusers looks."""
    code = (
        "import sys; from pathlib import Path; from diffusers import DiffusionPipeline;"
        "from models.loader import import_project_components; import_project_components(Path(sys.argv[1]));"
        "pipe = DiffusionPipeline.from_pretrained(sys.argv[1]); print(type(pipe).__name__, type(pipe.unet).__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]
