"""No key family grows without bound: 1,000 members in 100 servers run jobs through the real admission and fair
queue, the bot leaves half the servers, and what stays in Redis is checked key by key."""

from __future__ import annotations

import time

import redis

from imagine import fair, keys, limits, moderation, queue, retention
from imagine.contract import JobSpec, Requester
from imagine.settings import Settings

SERVERS = range(9000, 9100)
MEMBERS_PER_SERVER = 10


def member_ids(guild: int) -> range:
    return range(guild * 100, guild * 100 + MEMBERS_PER_SERVER)


def fair_keys(conn: redis.Redis) -> set[str]:
    pre = fair.prefix(keys.IMAGE_QUEUE)
    return {k.decode().removeprefix(pre) for k in conn.scan_iter(match=pre + "*", count=1000)}


def test_a_thousand_members_then_half_the_servers_left(conn: redis.Redis, settings: Settings) -> None:
    roomy = settings.model_copy(update={"max_waiting": 100_000})
    for guild in SERVERS:  # each server has rules of its own, and every member asks for a job
        limits.store(conn, guild, "member_hourly", 30)
        moderation.block(conn, guild, 1)
        for user in member_ids(guild):
            queue.enqueue(conn, JobSpec(prompt="a cube", requester=Requester(guild_id=guild, user_id=user)), roomy)
    assert fair.count(conn) == 1000
    while (popped := fair.pop(conn, keys.IMAGE_QUEUE)) is not None:  # the workers take them all
        conn.hset(f"rq:job:{popped[0]}", "status", "finished")
    # Idle bookkeeping is gone: no server or member has a tag, list or count left; only the queue's counters.
    assert fair_keys(conn) <= {"seq", "vt", "total", "bell", "sidle"}, fair_keys(conn)
    # Servers served in the last round keep their tag (a turn ahead of the virtual time) until the next job moves it
    # on: one entry each, gone at the next pop.
    sidle = fair.prefix(keys.IMAGE_QUEUE) + "sidle"
    assert conn.zcard(sidle) == len(SERVERS)
    fair.place(conn, keys.IMAGE_QUEUE, "one-more", SERVERS[-1], 1)
    assert fair.pop(conn, keys.IMAGE_QUEUE) == ("one-more", False)
    assert [g.decode() for g in conn.zrange(sidle, 0, -1)] == [str(SERVERS[-1])]

    gone, kept = list(SERVERS)[::2], list(SERVERS)[1::2]
    for guild in gone:
        retention.left(conn, guild, now=time.time() - 10)
    retention.left(conn, kept[0], now=time.time() - 10)
    assert retention.rejoined(conn, kept[0])  # back within the grace: kept
    assert retention.purge_due(conn, grace_s=3600) == []  # nobody is past a grace of an hour
    assert sorted(retention.purge_due(conn, grace_s=5)) == gone

    names = [k.decode() for k in conn.scan_iter(count=1000)]
    for guild in gone:
        assert not [n for n in names if f":{guild}:" in n or n.endswith(f":{guild}")], guild
    for guild in kept:
        assert limits.load(conn, guild, settings).member_hourly == 30
        assert moderation.blocked(conn, guild) == [1]
    families = {n.split(":")[1] for n in names if n.startswith("imagine:")}
    assert families <= {"guild", "guilds", "member", "job", "fair", "models"}, families
    assert not conn.exists(keys.LEFT_GUILDS)
    assert not {int(g) for g in conn.smembers(keys.IN_GUILDS)} & set(gone)  # only servers the bot is in


def test_a_left_servers_waiting_jobs_are_cancelled(conn: redis.Redis, settings: Settings) -> None:
    spec = JobSpec(prompt="waits", requester=Requester(guild_id=77, user_id=5))
    job = queue.enqueue(conn, spec, settings)
    fair.pause(conn, 77)
    retention.left(conn, 77, now=0)
    assert retention.purge_due(conn, grace_s=60) == [77]
    assert fair.count(conn) == 0 and conn.hget(keys.job(job.id), "status") == b"cancelled"
    assert not fair.is_paused(conn, 77)
