"""`imagine up`: Redis (embedded when REDIS_URL is unset), N workers and the bot, from one command.

Worker i runs on its own device with its own metrics port (imagine/devices.py plans them).
Each worker and the bot is its own process (`imagine worker`, `imagine bot`), exactly as they run on separate
machines, in its own session so that a Ctrl-C reaches only this supervisor: it then stops them in order (SIGTERM:
the bot closes, workers finish or hand back their job), waits, kills what is left, and stops the embedded Redis
last. A worker that dies is restarted (a few times a minute at most); if the bot exits, everything stops.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import FrameType

from imagine import redis as imagine_redis
from imagine.devices import WorkerSlot
from imagine.settings import Settings

log = logging.getLogger(__name__)

RESTARTS_PER_MINUTE = 5
STOP_TIMEOUT_S = 20.0


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    starts: list[float] = field(default_factory=list)

    def start(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(self.argv, env=env, start_new_session=True)
        self.starts = [t for t in self.starts if time.monotonic() - t < 60] + [time.monotonic()]
        log.info("started %s (pid %s)", self.name, self.proc.pid)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def may_restart(self) -> bool:
        return len([t for t in self.starts if time.monotonic() - t < 60]) < RESTARTS_PER_MINUTE


def _slot_args(slot: WorkerSlot | None) -> list[str]:
    """`imagine worker` options that put a worker on its own device and metrics port."""
    if slot is None:
        return []
    return ["--device", slot.device, "--metrics-port", str(slot.metrics_port)]


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        *,
        workers: int | Sequence[WorkerSlot] = 1,
        bot_args: Sequence[str] = (),
        worker_args: Sequence[str] = (),
    ) -> None:
        self.settings = settings
        base = [sys.executable, "-m", "imagine"]
        slots = workers if not isinstance(workers, int) else [None] * workers
        self.workers = [
            Child(f"worker-{i + 1}", [*base, "worker", *_slot_args(slot), *worker_args]) for i, slot in enumerate(slots)
        ]
        self.bot = Child("bot", [*base, "bot", *bot_args])
        self.stopping = False

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        self.stopping = True

    def run(self) -> int:
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            with imagine_redis.connect(self.settings) as connection:
                env = {**os.environ, "REDIS_URL": connection.url}
                if connection.owns_server:
                    print(f"imagine up: embedded Redis at {connection.url}", file=sys.stderr)
                return self._supervise(env)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _supervise(self, env: dict[str, str]) -> int:
        for child in [*self.workers, self.bot]:
            child.start(env)
        code = 0
        try:
            while not self.stopping and code == 0:
                time.sleep(0.2)
                if not self.bot.alive():
                    code = (self.bot.proc.returncode if self.bot.proc else 1) or 1
                    log.error("the bot exited; stopping everything")
                    break
                for child in self.workers:
                    if child.alive() or self.stopping:
                        continue
                    if not child.may_restart():
                        log.error("%s keeps dying; stopping everything", child.name)
                        code = 1
                        break
                    log.warning(
                        "%s exited (code %s); restarting it", child.name, child.proc.returncode if child.proc else "?"
                    )
                    child.start(env)
        finally:
            self._stop_all()
        return code

    def _stop_all(self) -> None:
        children = [self.bot, *self.workers]
        for child in children:
            if child.alive():
                assert child.proc is not None
                child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for child in children:
            if child.proc is None:
                continue
            try:
                child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in time; killing it", child.name)
                child.proc.kill()
                child.proc.wait()
        log.info("all stopped")
