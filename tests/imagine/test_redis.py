"""imagine/redis.py: a real embedded server with persistence on, one owner, guests, and a check for eviction."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import redis

from imagine.redis import EmbeddedRedis, check_server, connect
from imagine.settings import Settings


def test_embedded_server_persists_and_never_evicts(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path / "redis") as server:
        assert server.owner and server.url.startswith("redis://:")
        assert server.url.endswith(f"@127.0.0.1:{server.port}")
        conn = redis.Redis.from_url(server.url, decode_responses=True)
        assert conn.config_get("appendonly") == {"appendonly": "yes"}
        assert conn.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        assert conn.config_get("appendfsync") == {"appendfsync": "everysec"}
        assert check_server(conn) == []
        conn.set("kept", "yes")
        conn.close()
    assert not (tmp_path / "redis" / "server.json").exists()
    # A new server on the same folder replays the append-only file.
    with EmbeddedRedis(tmp_path / "redis") as server:
        assert redis.Redis.from_url(server.url).get("kept") == b"yes"


def test_a_second_process_joins_as_a_guest(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path / "redis") as owner:
        guest = EmbeddedRedis(tmp_path / "redis")
        # flock is per open file description, so a second instance in this process contends like another process.
        assert guest.start() == owner.url and not guest.owner
        guest.stop()
        assert redis.Redis.from_url(owner.url).ping()


def test_connect_starts_an_embedded_server_without_redis_url(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    settings = Settings(_env_file=None, data_dir=tmp_path)
    with connect(settings) as connection:
        assert connection.owns_server and connection.conn.ping()
        url = connection.url
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()


def test_check_server_warns_about_eviction(tmp_path: Path, caplog) -> None:
    config = {"maxmemory-policy": "allkeys-lru", "appendonly": "no"}
    with EmbeddedRedis(tmp_path / "redis", config=config) as server, caplog.at_level(logging.WARNING):
        warnings = check_server(redis.Redis.from_url(server.url))
    assert len(warnings) == 2 and "noeviction" in caplog.text


def test_the_embedded_server_wants_its_password_and_listens_on_loopback_only(tmp_path: Path) -> None:
    folder = tmp_path / "redis"
    with EmbeddedRedis(folder) as server:
        password = (folder / "password").read_text()
        assert len(password) >= 32 and f":{password}@" in server.url
        for secret in ("password", "server.json", "valkey.conf"):
            assert (folder / secret).stat().st_mode & 0o777 == 0o600, secret
        assert folder.stat().st_mode & 0o777 == 0o700
        anonymous = redis.Redis(host="127.0.0.1", port=server.port, socket_connect_timeout=2)
        with pytest.raises(redis.AuthenticationError):
            anonymous.ping()
        conn = redis.Redis.from_url(server.url, decode_responses=True)
        assert conn.config_get("bind") == {"bind": "127.0.0.1"}
        assert conn.config_get("protected-mode") == {"protected-mode": "yes"}
        url = server.url
    with EmbeddedRedis(folder) as server:  # a restart keeps its password, so its URL
        assert server.url.split("@")[0] == url.split("@")[0]
        assert redis.Redis.from_url(server.url).ping()


def test_clients_give_up_on_a_silent_server() -> None:
    from imagine.redis import async_client, client

    for made in (client("redis://127.0.0.1:1/0"), async_client("redis://127.0.0.1:1/0")):
        options = made.connection_pool.connection_kwargs
        assert options["socket_connect_timeout"] == 5.0 and options["socket_timeout"] == 30.0
