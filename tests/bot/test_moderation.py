"""/mod through the fake Discord: who sees and may run it, and every moderator command, in process.

Carol and Dave differ only in one role that grants Manage Server: Discord hides /mod from Carol, and when she sends
it anyway (a client that ignores the hint) the bot refuses her politely and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from imagine import fair, keys, limits, moderation
from tests.bot.fixtures import Front
from tests.bot.test_generation import imagine
from tests.support import permissions as P
from tests.support.scenario import FakeDiscord
from tests.support.state import Interaction, Member, Message

pytestmark = pytest.mark.asyncio


@dataclass
class Staff:
    carol: Member  # a member
    dave: Member  # the same, plus a role with Manage Server
    role_id: int


@pytest_asyncio.fixture
async def staff(front: Front) -> Staff:
    fake, guild = front.fake, front.scene.guild
    role = await fake.create_role(guild.id, "Staff", P.MANAGE_GUILD)
    carol = await fake.create_member(guild.id, "carol")
    dave = await fake.create_member(guild.id, "dave", roles=[role.id])
    return Staff(carol, dave, role.id)


async def answer_of(fake: FakeDiscord, inter: Interaction) -> Message:
    """The private answer to a command: the deferred message's first followup, or a direct ephemeral reply."""
    inter = await fake.wait_for_ack(inter)

    def check() -> Message | None:
        ids = [inter.original_message_id or 0, *inter.followup_ids]
        found = [fake.message(i) for i in ids if i in fake.world.messages]
        done = [m for m in found if m.content and not m.loading]
        return done[-1] if done else None

    return await fake.wait_for(check, what=f"the answer to interaction {inter.id}")


async def mod(front: Front, who: Member, sub: str, strict: bool = True, **options: Any) -> Message:
    inter = await front.fake.slash(
        "mod", channel_id=front.scene.channel.id, user_id=who.id, subcommand=sub, options=options, strict=strict
    )
    shown = await answer_of(front.fake, inter)
    assert shown.ephemeral, shown.content
    return shown


async def member_cmd(front: Front, who: Member, name: str, **options: Any) -> Message:
    inter = await front.fake.slash(name, channel_id=front.scene.channel.id, user_id=who.id, options=options)
    return await answer_of(front.fake, inter)


def job_id_of(front: Front, inter: Interaction) -> str:
    return front.job_of_message(inter.original_message_id or 0)


def rq_status(front: Front, job_id: str) -> JobStatus:
    return Job.fetch(job_id, connection=front.conn, serializer=JSONSerializer).get_status()


async def test_mod_is_hidden_from_members_and_refused_at_run_time(front: Front, staff: Staff) -> None:
    fake, guild_id = front.fake, front.scene.guild.id
    command = fake.find_command("mod", guild_id)
    assert int(command.payload["default_member_permissions"]) == P.MANAGE_GUILD
    with pytest.raises(PermissionError):
        await fake.slash("mod", channel_id=front.scene.channel.id, user_id=staff.carol.id, subcommand="pause")
    refused = await mod(front, staff.carol, "pause", strict=False)
    assert "for this server's moderators" in refused.content
    assert not fair.is_paused(front.conn, guild_id)
    # The same command from Dave, whose only difference is the role, works.
    done = await mod(front, staff.dave, "pause")
    assert "Paused" in done.content and fair.is_paused(front.conn, guild_id)
    # Members' own commands are visible to everyone.
    assert fake.find_command("queue", guild_id).payload.get("default_member_permissions") is None


async def test_the_moderator_role_counts_at_run_time(front: Front, staff: Staff) -> None:
    fake, guild_id = front.fake, front.scene.guild.id
    helpers = await fake.create_role(guild_id, "Helpers", 0)
    erin = await fake.create_member(guild_id, "erin", roles=[helpers.id])
    assert "moderators" in (await mod(front, erin, "blocked", strict=False)).content
    await mod(front, staff.dave, "role", role=helpers.id)
    assert moderation.moderator_role(front.conn, guild_id) == helpers.id
    # Discord still hides /mod from her (an admin would allow the role in Integrations); the bot lets her run it.
    assert "Nobody is blocked" in (await mod(front, erin, "blocked", strict=False)).content
    await mod(front, staff.dave, "role")  # no role: cleared
    assert "moderators" in (await mod(front, erin, "blocked", strict=False)).content


async def test_only_manage_server_chooses_the_moderator_role(front: Front, staff: Staff) -> None:
    fake, guild_id = front.fake, front.scene.guild.id
    helpers = await fake.create_role(guild_id, f"Helpers-{staff.carol.id}", 0)
    erin = await fake.create_member(guild_id, "erin-role", roles=[helpers.id])
    await mod(front, staff.dave, "role", role=helpers.id)
    # A holder of the moderator role moderates, but cannot hand the role on (here: to @everyone).
    assert "Nobody is blocked" in (await mod(front, erin, "blocked", strict=False)).content
    refused = await mod(front, erin, "role", strict=False, role=guild_id)
    assert "only members with Manage Server" in refused.content
    assert moderation.moderator_role(front.conn, guild_id) == helpers.id


async def test_the_configured_moderator_role_matches_by_id_only(front: Front, staff: Staff) -> None:
    fake, guild_id = front.fake, front.scene.guild.id
    named = await fake.create_role(guild_id, "Moderator", 0)  # anyone can make a role called that
    frank = await fake.create_member(guild_id, "frank", roles=[named.id])
    front.bot.settings = front.bot.settings.model_copy(update={"moderator_role": "Moderator"})
    assert "moderators" in (await mod(front, frank, "blocked", strict=False)).content
    front.bot.settings = front.bot.settings.model_copy(update={"moderator_role": str(named.id)})
    assert "Nobody is blocked" in (await mod(front, frank, "blocked", strict=False)).content


async def test_limits_show_set_and_reset(front: Front, staff: Staff) -> None:
    guild_id = front.scene.guild.id
    shown = await mod(front, staff.dave, "limits show")
    for name in limits.LIMITS:
        assert f"`{name}`" in shown.content
    assert "`member_active` **4** (default)" in shown.content
    assert "now **2**" in (await mod(front, staff.dave, "limits set", limit="member_active", value="2")).content
    assert "now **tiny**" in (await mod(front, staff.dave, "limits set", limit="models", value="Tiny")).content
    assert "at most 60" in (await mod(front, staff.dave, "limits set", limit="max_steps", value="61")).content
    raised = await mod(front, staff.dave, "limits set", limit="member_active", value="5")  # the owner allows 4
    assert raised.ephemeral and "member_active can be at most 4: the bot's owner allows no more" in raised.content
    assert "whole number" in (await mod(front, staff.dave, "limits set", limit="queue_depth", value="many")).content
    current = limits.load(front.conn, guild_id, front.settings)
    assert current.member_active == 2 and current.models == ("tiny",) and current.max_steps == 60
    assert "`member_active` **2**" in (await mod(front, staff.dave, "limits show")).content
    await mod(front, staff.dave, "limits reset", limit="member_active")
    assert limits.load(front.conn, guild_id, front.settings).member_active == 4
    await mod(front, staff.dave, "limits reset")
    assert limits.load(front.conn, guild_id, front.settings).models == ()


async def test_queue_lists_who_what_and_how_long(front: Front, staff: Staff) -> None:
    scene = front.scene
    await imagine(front, "first red cube")
    await imagine(front, "bob's blue ball", user=scene.bob.id)
    listed = (await mod(front, staff.dave, "queue")).content
    assert "2 job(s)" in listed
    assert f"#1 in queue <@{scene.alice.id}> — *first red cube*" in listed
    assert f"#2 in queue <@{scene.bob.id}> — *bob's blue ball*" in listed
    assert " s" in listed  # how long it has waited
    await mod(front, staff.dave, "pause")
    assert "⏸️ paused" in (await mod(front, staff.dave, "queue")).content


async def test_cancel_and_clear_take_jobs_out_of_rq(front: Front, staff: Staff) -> None:
    fake, scene = front.fake, front.scene
    keep = await imagine(front, "keep me")
    drop = await imagine(front, "drop me")
    bob1 = await imagine(front, "bob one", user=scene.bob.id)
    bob2 = await imagine(front, "bob two", user=scene.bob.id)
    dropped = job_id_of(front, drop)
    choices = await fake.autocomplete(
        "mod", channel_id=scene.channel.id, user_id=staff.dave.id, subcommand="cancel", focused="job",
        options={"job": "drop"},
    )  # fmt: skip
    assert [c["value"] for c in choices] == [dropped]
    done = await mod(front, staff.dave, "cancel", job=dropped[:8])
    assert "Cancelled" in done.content
    assert rq_status(front, dropped) == JobStatus.CANCELED and dropped not in fair.order(front.conn)
    status = await fake.wait_for(lambda: "🚫" in fake.message(drop.original_message_id or 0).content and 1, what="x")
    assert status
    assert "cancelled by a moderator" in fake.message(drop.original_message_id or 0).content
    cleared = await mod(front, staff.dave, "clear", member=scene.bob.id)
    assert "Cancelled 2" in cleared.content
    for inter in (bob1, bob2):
        assert rq_status(front, job_id_of(front, inter)) == JobStatus.CANCELED
    await front.work()  # no worker runs a cancelled job
    kept = await fake.wait_for(lambda: (m := fake.message(keep.original_message_id or 0)).components and m, what="r")
    assert kept.attachments
    for inter in (drop, bob1, bob2):
        message = fake.message(inter.original_message_id or 0)
        assert not message.attachments and "🚫" in message.content
        assert front.conn.hget(keys.job(job_id_of(front, inter)), "status") == b"cancelled"
    again = await mod(front, staff.dave, "cancel", job=dropped)
    assert "no such job" in again.content
    await imagine(front, "one more")
    await imagine(front, "and another", user=scene.bob.id)
    assert "Cancelled 2" in (await mod(front, staff.dave, "clear")).content
    assert fair.order(front.conn) == []


async def test_pause_keeps_jobs_waiting_and_resume_runs_them(front: Front, staff: Staff) -> None:
    fake, scene = front.fake, front.scene
    await mod(front, staff.dave, "pause")
    waiting_job = await imagine(front, "waits while paused")
    assert len(fair.order(front.conn)) == 0
    await front.work()
    assert not fake.message(waiting_job.original_message_id or 0).components  # nothing ran
    listed = (await member_cmd(front, scene.alice, "queue")).content
    assert "⏸️ paused" in listed and "paused the queue here" in listed
    await mod(front, staff.dave, "limits set", limit="paused_accepts", value="no")
    inter = await fake.wait_for_ack(
        await fake.slash("imagine", channel_id=scene.channel.id, user_id=scene.bob.id, options={"prompt": "refused"})
    )
    refusal = await answer_of(fake, inter)
    assert refusal.ephemeral and "paused the queue" in refusal.content
    assert "Resumed" in (await mod(front, staff.dave, "resume")).content
    assert len(fair.order(front.conn)) == 1
    await front.work()
    await fake.wait_for(lambda: fake.message(waiting_job.original_message_id or 0).components, what="the result")


async def test_block_and_unblock(front: Front, staff: Staff) -> None:
    fake, scene = front.fake, front.scene
    queued = await imagine(front, "before the block", user=scene.bob.id)
    done = await mod(front, staff.dave, "block", member=scene.bob.id, clear=True)
    assert f"Blocked <@{scene.bob.id}> and cancelled 1" in done.content
    assert rq_status(front, job_id_of(front, queued)) == JobStatus.CANCELED
    assert f"<@{scene.bob.id}>" in (await mod(front, staff.dave, "blocked")).content
    inter = await fake.slash("imagine", channel_id=scene.channel.id, user_id=scene.bob.id, options={"prompt": "hi"})
    refusal = await answer_of(fake, inter)
    assert refusal.ephemeral and "cannot ask for images on this server" in refusal.content
    assert [m for m in fake.messages(scene.channel.id) if not m.ephemeral and "hi" in m.content] == []
    await mod(front, staff.dave, "unblock", member=scene.bob.id)
    assert "Nobody is blocked" in (await mod(front, staff.dave, "blocked")).content
    await imagine(front, "hi again", user=scene.bob.id)


async def test_banned_words_are_refused_without_echo(front: Front, staff: Staff) -> None:
    fake, scene = front.fake, front.scene
    assert "now refused" in (await mod(front, staff.dave, "banned add", pattern="Gor*")).content
    await mod(front, staff.dave, "banned add", pattern="blue whale")
    assert "||gor*||" in (await mod(front, staff.dave, "banned list")).content
    for prompt in ("a GORY scene", "a blue-whale", "a ｇｏｒｅ picture"):
        inter = await fake.slash(
            "imagine", channel_id=scene.channel.id, user_id=scene.alice.id, options={"prompt": prompt}
        )
        refusal = await answer_of(fake, inter)
        assert refusal.ephemeral and "a word or phrase this server does not allow" in refusal.content
        assert "gor" not in refusal.content.lower() and "whale" not in refusal.content.lower()
    assert len(fair.order(front.conn)) == 0
    await imagine(front, "an algorithm, a blue sky and a whale")  # words, not substrings
    await mod(front, staff.dave, "banned remove", pattern="GOR*")
    await imagine(front, "gory")
    assert "||blue whale||" in (await mod(front, staff.dave, "banned list")).content


async def test_unsafe_banned_words_are_refused_at_add_and_evasions_caught(front: Front, staff: Staff) -> None:
    fake, scene = front.fake, front.scene
    too_wild = await mod(front, staff.dave, "banned add", pattern="a*a*a*a*a*a*z")
    assert f"at most {moderation.MAX_WILDCARDS} `*`" in too_wild.content and "now refused" not in too_wild.content
    assert moderation.banned(front.conn, scene.guild.id) == []
    assert "now refused" in (await mod(front, staff.dave, "banned add", pattern="gore")).content
    for prompt in ("a g\u043ere scene", "g.o.r.e", "g0re", "a g o r e picture"):
        inter = await fake.slash(
            "imagine", channel_id=scene.channel.id, user_id=scene.alice.id, options={"prompt": prompt}
        )
        refusal = await answer_of(fake, inter)
        assert refusal.ephemeral and "a word or phrase this server does not allow" in refusal.content, prompt
    assert front.conn.llen("rq:queue:imagine:image") == 0
    await imagine(front, "a gorgeous gory forest")


async def test_channels_where_the_bot_answers(front: Front, staff: Staff) -> None:
    fake, scene = front.fake, front.scene
    art = await fake.create_channel(scene.guild.id, "art")
    allowed = await mod(front, staff.dave, "channels allow", channel=art.id)
    assert f"<#{art.id}>" in allowed.content
    inter = await fake.slash("imagine", channel_id=scene.channel.id, user_id=scene.alice.id, options={"prompt": "x"})
    refusal = await answer_of(fake, inter)
    assert refusal.ephemeral and f"only in <#{art.id}>" in refusal.content
    there = await fake.wait_for_ack(
        await fake.slash("imagine", channel_id=art.id, user_id=scene.alice.id, options={"prompt": "in art"})
    )
    await fake.wait_for(lambda: front.conn.get(keys.message(there.original_message_id or 0)), what="queued in #art")
    assert f"<#{art.id}>" in (await mod(front, staff.dave, "channels list")).content
    assert "any channel" in (await mod(front, staff.dave, "channels remove", channel=art.id)).content
    await imagine(front, "anywhere again")


async def test_nsfw_models_only_in_age_restricted_channels(front: Front, staff: Staff) -> None:
    from tests.support import payloads

    fake, scene = front.fake, front.scene
    assert "only in age-restricted" in (await mod(front, staff.dave, "nsfw add", model="tiny")).content
    assert "`tiny`" in (await mod(front, staff.dave, "nsfw list")).content
    inter = await fake.slash(
        "imagine", channel_id=scene.channel.id, user_id=scene.alice.id, options={"prompt": "x", "model": "tiny"}
    )
    refusal = await answer_of(fake, inter)
    assert "only in age-restricted channels" in refusal.content
    # The default model is that model too: refused without naming it.
    inter = await fake.slash("imagine", channel_id=scene.channel.id, user_id=scene.alice.id, options={"prompt": "x"})
    assert "age-restricted" in (await answer_of(fake, inter)).content
    adults = await fake.create_channel(scene.guild.id, "adults")
    adults.nsfw = True
    await fake._dispatch("CHANNEL_UPDATE", payloads.channel_json(adults), scene.guild.id)
    there = await fake.wait_for_ack(
        await fake.slash(
            "imagine", channel_id=adults.id, user_id=scene.alice.id, options={"prompt": "ok", "model": "tiny"}
        )
    )
    job = await fake.wait_for(lambda: front.conn.get(keys.message(there.original_message_id or 0)), what="queued")
    spec = Job.fetch(job.decode(), connection=front.conn, serializer=JSONSerializer).args[0]
    assert spec["requester"]["age_restricted"] is True
    await mod(front, staff.dave, "nsfw remove", model="tiny")
    await imagine(front, "fine anywhere now")


async def test_every_action_is_in_the_log(front: Front, staff: Staff) -> None:
    scene = front.scene
    await mod(front, staff.dave, "pause")
    await mod(front, staff.dave, "resume")
    await mod(front, staff.dave, "block", member=scene.bob.id)
    await mod(front, staff.dave, "limits set", limit="member_hourly", value="10")
    await mod(front, staff.dave, "banned add", pattern="secretword")
    shown = (await mod(front, staff.dave, "log", count=10)).content
    lines = shown.splitlines()
    assert len(lines) == 5 and all(f"<@{staff.dave.id}>" in line and "<t:" in line for line in lines)
    assert "banned a word ||secretword||" in lines[0] and "paused the queue" in lines[-1]
    assert "set a limit member_hourly = 10" in shown and f"blocked <@{scene.bob.id}>" in shown
    entries = moderation.history(front.conn, scene.guild.id)
    assert [e.action for e in entries][-1] == "paused the queue" and entries[0].actor == staff.dave.id


def subcommands(payload: dict[str, Any], prefix: str = "") -> list[tuple[str, list[dict[str, Any]]]]:
    """Every runnable /mod path ("pause", "limits set", ...) with its options, read off the synced command."""
    found = []
    for option in payload.get("options") or []:
        path = f"{prefix} {option['name']}".strip()
        if option["type"] == 2:
            found += subcommands(option, path)
        elif option["type"] == 1:
            found.append((path, option.get("options") or []))
    return found


async def test_every_mod_command_refuses_a_member_and_changes_nothing(front: Front, staff: Staff) -> None:
    fake, scene = front.fake, front.scene
    samples = {
        3: "member_active",  # strings (a limit name fits the one string option with choices too)
        4: 5,
        5: True,
        6: scene.bob.id,
        7: scene.channel.id,
        8: staff.role_id,
    }
    paths = subcommands(fake.find_command("mod", scene.guild.id).payload)
    assert len(paths) >= 20
    before = {k: front.conn.dump(k) for k in front.conn.keys("imagine:guild:*")}
    for path, options in paths:
        values = {o["name"]: samples[o["type"]] for o in options if o.get("required")}
        refused = await mod(front, staff.carol, path, strict=False, **values)
        expected = "only members with Manage Server" if path == "role" else "for this server's moderators"
        assert expected in refused.content, path
    after = {k: front.conn.dump(k) for k in front.conn.keys("imagine:guild:*")}
    assert after == before and not fair.is_paused(front.conn, scene.guild.id)
