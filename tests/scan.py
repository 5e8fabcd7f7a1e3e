"""Look through everything in a Redis database for a string (a secret that must not be kept): every key of every
type, values decompressed where RQ compressed them."""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Iterator

import redis


def _values(conn: redis.Redis, key: bytes) -> Iterator[bytes]:
    kind = conn.type(key)
    kind = kind.decode() if isinstance(kind, bytes) else kind
    if kind == "string":
        yield conn.get(key) or b""
    elif kind == "hash":
        for field, value in conn.hgetall(key).items():
            yield field
            yield value
    elif kind == "list":
        yield from conn.lrange(key, 0, -1)
    elif kind == "set":
        yield from conn.smembers(key)
    elif kind == "zset":
        yield from conn.zrange(key, 0, -1)
    elif kind == "stream":
        for _, fields in conn.xrange(key):
            for field, value in fields.items():
                yield field
                yield value


def keys_holding(conn: redis.Redis, needle: str) -> list[str]:
    """The keys whose name or any value (plain, or zlib-decompressed as RQ stores job data) contains `needle`."""
    wanted = needle.encode()
    found = []
    for key in conn.scan_iter(count=500):
        blobs = [key, *_values(conn, key)]
        for blob in blobs:
            texts = [blob]
            with contextlib.suppress(zlib.error):
                texts.append(zlib.decompress(blob))
            if any(wanted in text for text in texts):
                found.append(key.decode())
                break
    return found
