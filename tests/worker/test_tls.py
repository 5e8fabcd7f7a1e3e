"""A remote worker: a real `imagine worker` process takes a job from a real Redis over TLS (`rediss://`) with a
password, and the bot's asyncio client connects the same way. The server is the system `redis-server` (the
embedded Valkey is built without TLS), its certificate self-signed by `openssl` in the test; the CA file travels in
the URL (`?ssl_ca_certs=`), which redis-py understands, so no setting of ours is involved."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import redis

from imagine import queue
from imagine import redis as imagine_redis
from imagine.contract import JobSpec
from tests.helpers import make_settings, start_worker

pytestmark = pytest.mark.slow

PASSWORD = "s3cret/with:odd@chars"


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1, and its key."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subject = ["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
    files = ["-keyout", str(key), "-out", str(cert)]
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", *subject, *files],
        check=True,
        capture_output=True,
    )
    return cert, key


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(host:port, CA file) of a TLS-only Redis with a password, started for this module."""
    server = shutil.which("redis-server")
    if server is None or shutil.which("openssl") is None:
        pytest.skip("needs the redis-server and openssl commands (apt-get install redis-server openssl)")
    folder = tmp_path_factory.mktemp("tls-redis")
    cert, key = make_certificate(folder)
    port = free_port()
    args = ["--port", "0", "--tls-port", str(port), "--tls-cert-file", str(cert), "--tls-key-file", str(key)]
    args += ["--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no", "--requirepass", PASSWORD]
    args += ["--dir", str(folder), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"]
    proc = subprocess.Popen([server, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and proc.poll() is None:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            if "TLS" in out and ("not" in out or "Failed" in out):
                pytest.skip(f"{server} is built without TLS: {out.strip().splitlines()[-1]}")
            raise RuntimeError(f"redis-server did not start:\n{out}")
        yield f"127.0.0.1:{port}", cert
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def url_of(where: str, ca: Path | None, password: str = PASSWORD) -> str:
    query = f"?ssl_ca_certs={quote(str(ca))}" if ca is not None else ""
    return f"rediss://:{quote(password, safe='')}@{where}/0{query}"


def test_a_worker_takes_a_job_from_a_tls_redis_with_a_password(
    tls_redis: tuple[str, Path], data_dir: Path, tiny_dir: Path
) -> None:
    where, ca = tls_redis
    url = url_of(where, ca)
    settings = make_settings(url, data_dir, job_retries=0)
    with imagine_redis.connect(settings) as connection:
        conn = connection.conn
        assert conn.connection_pool.connection_class is redis.SSLConnection
        conn.flushdb()
        job = queue.enqueue(conn, JobSpec(prompt="over TLS", model="tiny", seed=7, steps=2), settings)
        worker = start_worker(url, data_dir, "--burst")
        try:
            result = queue.wait(conn, job.id, timeout=120)
        finally:
            out, _ = worker.communicate(timeout=120)
        assert worker.returncode == 0, out.decode(errors="replace")[-3000:]
        assert len(result.images) == 1 and result.images[0].png_bytes().startswith(b"\x89PNG")
        log = out.decode(errors="replace")
        assert PASSWORD not in log and quote(PASSWORD, safe="") not in log  # the URL is logged redacted


def test_the_bots_async_client_connects_over_tls(tls_redis: tuple[str, Path]) -> None:
    import asyncio

    where, ca = tls_redis

    async def roundtrip() -> bytes | str | None:
        client = imagine_redis.async_client(url_of(where, ca))
        try:
            await imagine_redis.wait_until_up(client, max_wait_s=2)
            await client.set("imagine:test:tls", b"yes", ex=60)
            return await client.get("imagine:test:tls")
        finally:
            await client.aclose()

    assert asyncio.run(roundtrip()) == b"yes"


def test_the_certificate_is_verified_and_the_password_required(tls_redis: tuple[str, Path]) -> None:
    where, ca = tls_redis
    no_ca = redis.Redis.from_url(url_of(where, None), retry=None)
    with pytest.raises(redis.ConnectionError) as refused:
        no_ca.ping()
    assert "certificate verify failed" in str(refused.value)
    wrong = redis.Redis.from_url(url_of(where, ca, password="wrong"), retry=None)
    with pytest.raises(redis.AuthenticationError):
        wrong.ping()
