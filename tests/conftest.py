"""Shared fixtures: a real Redis (embedded, or IMAGINE_TEST_REDIS_URL), a clean database per test, the tiny model.

Tests never mock Redis. By default one embedded server serves the session and each test starts from FLUSHDB; to run
against another server, set IMAGINE_TEST_REDIS_URL (never REDIS_URL: the tests flush the database they are given).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

# Light and offline: the tiny model needs no hub, and one thread avoids oversubscribing a busy 2-core machine.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from imagine.redis import EmbeddedRedis
from imagine.settings import Settings
from tests.helpers import make_settings


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real Redis for the whole session."""
    url = os.environ.get("IMAGINE_TEST_REDIS_URL")
    if url:
        yield url
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The session server, flushed: every test starts with an empty database."""
    conn = redis.Redis.from_url(redis_server)
    conn.flushdb()
    conn.close()
    return redis_server


@pytest.fixture
def conn(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder with the tiny model built once per session (workers in subprocesses share it)."""
    folder = tmp_path_factory.mktemp("data")
    return folder


@pytest.fixture(scope="session")
def tiny_dir(data_dir: Path) -> Path:
    from models import tiny

    return tiny.ensure(data_dir / "models" / "tiny")


@pytest.fixture
def settings(redis_url: str, data_dir: Path) -> Settings:
    return make_settings(redis_url, data_dir)


@pytest.fixture(scope="session")
def ctx(redis_server: str, data_dir: Path, tiny_dir: Path) -> Iterator[object]:
    """A worker context shared by the session, so the tiny pipeline loads once (tests flush Redis, not it)."""
    from worker.context import WorkerContext

    client = redis.Redis.from_url(redis_server)
    yield WorkerContext.create(make_settings(redis_server, data_dir), client, name="test-worker")
    client.close()
