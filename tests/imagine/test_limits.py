"""Each server's limits and rules at enqueue, against a real Redis: every one refused at its edge and accepted just
under it, with a refusal that names the limit and says when to try again."""

from __future__ import annotations

import json
import time

import pytest
import redis

from imagine import admission, fair, keys, limits, moderation, queue
from imagine.admission import Refused
from imagine.contract import JobSpec, ModelDefaults, ModelInfo, Requester
from imagine.settings import Settings

GUILD, CHANNEL = 1001, 2002
ALICE, BOB = 11, 12


def ask(conn: redis.Redis, settings: Settings, user: int = ALICE, **fields: object) -> str:
    """Enqueue a request as `user` in the test server; the job id."""
    spec_fields: dict[str, object] = {"prompt": "a red cube", **fields}
    requester = Requester(
        guild_id=GUILD,
        channel_id=int(spec_fields.pop("channel", CHANNEL)),  # type: ignore[call-overload]
        user_id=user,
        age_restricted=bool(spec_fields.pop("age_restricted", False)),
    )
    return queue.enqueue(conn, JobSpec(**spec_fields, requester=requester), settings).id  # type: ignore[arg-type]


def refused(conn: redis.Redis, settings: Settings, user: int = ALICE, **fields: object) -> Refused:
    with pytest.raises(Refused) as caught:
        ask(conn, settings, user, **fields)
    return caught.value


def publish_model(conn: redis.Redis, name: str = "tiny", *, width: int = 32, steps: int = 20) -> None:
    info = ModelInfo(
        name=name,
        defaults=ModelDefaults(width=width, height=width, steps=steps, guidance=4.0, sampler="euler"),
        default=True,
    )
    conn.hset(keys.MODELS, name, info.model_dump_json())


def finish(conn: redis.Redis, job_id: str) -> None:
    """What a worker leaves behind: the job no longer holds a place."""
    conn.hset(f"rq:job:{job_id}", "status", "finished")


# --- storage ---------------------------------------------------------------------------------------------------


def test_defaults_come_from_settings_and_overrides_from_redis(conn: redis.Redis, settings: Settings) -> None:
    base = limits.load(conn, GUILD, settings)
    assert base == limits.defaults(settings)
    assert (base.member_active, base.member_hourly, base.queue_depth) == (4, 60, 50)
    assert base.max_steps == settings.max_steps and base.models == () and base.paused_accepts
    limits.store(conn, GUILD, "member_active", limits.parse("member_active", "2", settings))
    limits.store(conn, GUILD, "models", limits.parse("models", "Tiny, shapes,tiny", settings))
    limits.store(conn, GUILD, "paused_accepts", limits.parse("paused_accepts", "no", settings))
    got = limits.load(conn, GUILD, settings)
    assert got.member_active == 2 and got.models == ("tiny", "shapes") and got.paused_accepts is False
    assert limits.overridden(conn, GUILD) == {"member_active", "models", "paused_accepts"}
    assert limits.load(conn, GUILD + 1, settings) == base  # per server
    limits.reset(conn, GUILD, "models")
    assert limits.load(conn, GUILD, settings).models == ()
    limits.reset(conn, GUILD)
    assert limits.load(conn, GUILD, settings) == base


@pytest.mark.parametrize(
    ("name", "text", "says"),
    [
        ("member_active", "0", "at least 1"),
        ("member_active", "two", "whole number"),
        ("max_steps", "61", "at most 60"),
        ("max_count", "5", "at most 4"),
        ("paused_accepts", "maybe", "yes or no"),
        ("models", "Not A Model!", "not a model name"),
        ("nope", "1", "no limit called"),
    ],
)
def test_a_moderator_is_told_what_a_limit_takes(settings: Settings, name: str, text: str, says: str) -> None:
    with pytest.raises(limits.LimitError, match=says):
        limits.parse(name, text, settings)


def test_a_moderator_may_only_tighten_the_owners_values(conn: redis.Redis, settings: Settings) -> None:
    owner = settings.model_copy(update={"member_max_active": 3, "member_max_per_hour": 20, "guild_max_queue": 10})
    for name, ceiling in (("member_active", 3), ("member_hourly", 20), ("queue_depth", 10), ("max_steps", 60)):
        assert limits.parse(name, str(ceiling), owner) == ceiling
        assert limits.parse(name, "1", owner) == 1
        with pytest.raises(limits.LimitError, match=f"{name} can be at most {ceiling}: the bot's owner allows no more"):
            limits.parse(name, str(ceiling + 1), owner)
    # A value stored before the owner lowered the ceiling reads as the ceiling, and admission holds to it.
    limits.store(conn, GUILD, "member_active", 3)
    lowered = owner.model_copy(update={"member_max_active": 2})
    assert limits.load(conn, GUILD, lowered).member_active == 2
    ask(conn, lowered)
    ask(conn, lowered)
    no = refused(conn, lowered)
    assert no.limit == "member_active" and "2 jobs queued or running" in str(no) and "`member_active`" in str(no)


def test_a_global_cap_on_jobs_waiting_across_servers(conn: redis.Redis, settings: Settings) -> None:
    capped = settings.model_copy(update={"max_waiting": 3})
    for guild in (GUILD, GUILD + 1, GUILD + 2):
        queue.enqueue(conn, JobSpec(prompt="x", requester=Requester(guild_id=guild, user_id=1)), capped)
    for requester in (Requester(guild_id=GUILD + 3, user_id=1), None):  # another server, or the CLI
        with pytest.raises(Refused) as no:
            queue.enqueue(conn, JobSpec(prompt="y", requester=requester), capped)
        assert no.value.limit == "global_queue" and "3 jobs are waiting across all its servers" in no.value.message
        assert "`global_queue`" in no.value.message
    assert fair.count(conn) == 3
    fair.pop(conn, keys.IMAGE_QUEUE)  # a worker takes one: room again
    queue.enqueue(conn, JobSpec(prompt="z", requester=Requester(guild_id=GUILD + 3, user_id=1)), capped)


def test_a_malformed_stored_limit_is_ignored(conn: redis.Redis, settings: Settings) -> None:
    conn.hset(keys.guild(GUILD, "limits"), mapping={"member_active": "not json", "max_steps": json.dumps(10**6)})
    assert limits.load(conn, GUILD, settings) == limits.defaults(settings)


# --- counting limits, each at its edge -------------------------------------------------------------------------


def test_jobs_per_member_at_once(conn: redis.Redis, settings: Settings) -> None:
    limits.store(conn, GUILD, "member_active", 3)
    jobs = [ask(conn, settings) for _ in range(3)]  # just under, then at the edge
    no = refused(conn, settings)
    assert no.limit == "member_active" and "3 jobs queued or running" in str(no) and "when one of them" in str(no)
    assert not conn.exists(keys.job("x")) and conn.zcard(keys.member(GUILD, ALICE, "active")) == 3
    ask(conn, settings, BOB)  # others are not held back
    conn.hset(f"rq:job:{jobs[0]}", "status", "started")
    refused(conn, settings)  # running still counts
    finish(conn, jobs[0])
    ask(conn, settings)  # a place freed up


def test_jobs_per_member_per_hour_slide(conn: redis.Redis, settings: Settings) -> None:
    limits.store(conn, GUILD, "member_hourly", 3)
    jobs = [ask(conn, settings) for _ in range(3)]
    for job in jobs:
        finish(conn, job)  # finished jobs still count for the hour
    no = refused(conn, settings)
    assert no.limit == "member_hourly" and "3 jobs in the last hour" in str(no)
    assert no.retry_after is not None and 3590 < no.retry_after <= 3600 and "in 60 min" in str(no)
    hourly = keys.member(GUILD, ALICE, "hourly")
    oldest = jobs[0].encode()
    now = time.time()
    conn.zadd(hourly, {oldest: now - 3600 + 30})  # the oldest leaves the window in 30 s
    no = refused(conn, settings)
    assert no.retry_after is not None and 20 < no.retry_after <= 30
    assert "in 30 s" in str(no) or "in 29 s" in str(no)
    conn.zadd(hourly, {oldest: now - 3601})
    ask(conn, settings)


def test_queue_depth_per_server(conn: redis.Redis, settings: Settings) -> None:
    limits.store(conn, GUILD, "queue_depth", 3)
    first = ask(conn, settings, 1)
    ask(conn, settings, 2)
    ask(conn, settings, 3)
    no = refused(conn, settings, 4)
    assert no.limit == "queue_depth" and "queue is full (3 jobs)" in str(no)
    finish(conn, first)
    ask(conn, settings, 4)


def test_a_cancelled_job_frees_its_places(conn: redis.Redis, settings: Settings) -> None:
    from imagine import waiting

    limits.store(conn, GUILD, "member_active", 1)
    job = ask(conn, settings)
    refused(conn, settings)
    assert waiting.cancel(conn, job, reason="cancelled") == "cancelled"
    ask(conn, settings)


def test_paused_servers_accept_or_refuse_as_configured(conn: redis.Redis, settings: Settings) -> None:
    fair.pause(conn, GUILD)
    parked = ask(conn, settings)
    assert fair.order(conn) == [] and queue.position(conn, parked) is None
    limits.store(conn, GUILD, "paused_accepts", False)
    no = refused(conn, settings)
    assert no.limit == "paused" and "paused the queue" in str(no)
    fair.resume(conn, GUILD)
    assert fair.order(conn) == [parked]
    ask(conn, settings)


# --- request limits and rules ----------------------------------------------------------------------------------


def test_steps_pixels_count_and_frames(conn: redis.Redis, settings: Settings) -> None:
    for name, value in (("max_steps", 10), ("max_pixels", 64 * 64), ("max_count", 2), ("max_frames", 16)):
        limits.store(conn, GUILD, name, value)
    assert refused(conn, settings, steps=11).limit == "max_steps"
    ask(conn, settings, steps=10)
    no = refused(conn, settings, width=64, height=72)
    assert no.limit == "max_pixels" and "4,096 pixels" in str(no)
    ask(conn, settings, width=64, height=64)
    assert refused(conn, settings, count=3).limit == "max_count"
    ask(conn, settings, count=2)
    limits.store(conn, GUILD, "member_active", 10)
    assert refused(conn, settings, kind="clip", frames=17).limit == "max_frames"
    ask(conn, settings, kind="clip", frames=16)


def test_unset_fields_are_checked_with_the_models_defaults(conn: redis.Redis, settings: Settings) -> None:
    publish_model(conn, "big", width=512, steps=30)
    limits.store(conn, GUILD, "max_steps", 29)
    assert refused(conn, settings).limit == "max_steps"  # the default model's 30 steps
    limits.store(conn, GUILD, "max_steps", 30)
    limits.store(conn, GUILD, "max_pixels", 512 * 512 - 1)
    assert refused(conn, settings, model="big").limit == "max_pixels"
    limits.store(conn, GUILD, "max_pixels", 512 * 512)
    ask(conn, settings, model="big")


def test_models_members_may_use(conn: redis.Redis, settings: Settings) -> None:
    publish_model(conn, "tiny")
    limits.store(conn, GUILD, "models", ("shapes",))
    no = refused(conn, settings, model="tiny")
    assert no.limit == "models" and "choose one of shapes" in str(no)
    assert refused(conn, settings).limit == "models"  # the default model is tiny
    ask(conn, settings, model="shapes")


def test_nsfw_models_only_in_age_restricted_channels(conn: redis.Redis, settings: Settings) -> None:
    moderation.mark_nsfw(conn, GUILD, "spicy")
    no = refused(conn, settings, model="spicy")
    assert no.limit == "nsfw" and "age-restricted" in str(no)
    ask(conn, settings, model="spicy", age_restricted=True)
    ask(conn, settings, model="tame")


def test_blocked_members_and_channels(conn: redis.Redis, settings: Settings) -> None:
    moderation.block(conn, GUILD, BOB)
    assert refused(conn, settings, BOB).limit == "blocked"
    ask(conn, settings, ALICE)
    moderation.unblock(conn, GUILD, BOB)
    ask(conn, settings, BOB)
    moderation.allow_channel(conn, GUILD, 7)
    no = refused(conn, settings)
    assert no.limit == "channels" and "only in <#7>" in str(no)
    ask(conn, settings, channel=7)


def test_banned_words_refuse_without_echo(conn: redis.Redis, settings: Settings) -> None:
    moderation.ban(conn, GUILD, "Grue*")
    no = refused(conn, settings, prompt="a GRUESOME cube")
    assert no.limit == "banned" and "grue" not in str(no).lower()
    ask(conn, settings, prompt="a cube", negative_prompt="gruesome")  # a negative prompt may name it
    assert conn.zcard(keys.guild(GUILD, "active")) == 1


def test_jobs_without_a_server_skip_the_rules(conn: redis.Redis, settings: Settings) -> None:
    limits.store(conn, 0, "member_active", 1)
    for _ in range(3):
        queue.enqueue(conn, JobSpec(prompt="from the CLI"), settings)
    assert len(fair.order(conn)) == 3


def test_in_time_rounds_up() -> None:
    assert [admission.in_time(s) for s in (0.2, 59.1, 89, 91, 3599, 5401, 7300)] == [
        "in 1 s",
        "in 60 s",
        "in 89 s",
        "in 2 min",
        "in 60 min",
        "in 2 h",
        "in 3 h",
    ]
