"""/imagine in process: the real bot against the fake Discord and a real Redis; jobs run by an in-process worker."""

from __future__ import annotations

import json

import pytest
from rq.job import Job
from rq.serializers import JSONSerializer

from imagine import fair, keys
from imagine.contract import JobSpec
from tests.bot.fixtures import Front

pytestmark = pytest.mark.asyncio


async def imagine(front: Front, prompt: str, user: int | None = None, **options: object):  # type: ignore[no-untyped-def]
    fake, scene = front.fake, front.scene
    inter = await fake.slash(
        "imagine", channel_id=scene.channel.id, user_id=user or scene.alice.id, options={"prompt": prompt, **options}
    )
    inter = await fake.wait_for_ack(inter)
    await fake.wait_for(lambda: front.conn.get(keys.message(inter.original_message_id or 0)), what="the job queued")
    return inter


def queued_spec(front: Front, job_id: str) -> JobSpec:
    job = Job.fetch(job_id, connection=front.conn, serializer=JSONSerializer)
    return JobSpec.model_validate(job.args[0])


async def test_imagine_defers_then_enqueues_with_where_to_answer(front: Front) -> None:
    inter = await imagine(front, "a red cube --seed 42", count=2)
    assert inter.ack_type == 5 and (inter.acked_at or 0) - inter.created_at < 3
    job_id = front.job_of_message(inter.original_message_id or 0)
    spec = queued_spec(front, job_id)
    assert spec.prompt == "a red cube" and spec.seed == 42 and spec.count == 2 and spec.model == "tiny"
    r = spec.requester
    assert r is not None and r.interaction_token is None  # the token waits in its own key (imagine.tokens)
    assert front.conn.get(keys.token(job_id)) == inter.token.encode()
    assert (r.user_id, r.channel_id, r.guild_id) == (front.scene.alice.id, front.scene.channel.id, front.scene.guild.id)
    assert r.message_id == inter.original_message_id and r.upload_limit == front.scene.guild.upload_limit
    # The long-lived record never holds the token.
    record = front.conn.hget(keys.job(job_id), "spec")
    assert record is not None and inter.token not in record.decode()
    status = front.fake.message(inter.original_message_id or 0)
    assert "#1 in queue" in status.content and status.allowed_mentions == {"parse": []}


async def test_options_flags_and_member_defaults_combine(front: Front) -> None:
    fake, scene = front.fake, front.scene
    answer = await fake.wait_for_ack(
        await fake.slash(
            "settings",
            channel_id=scene.channel.id,
            user_id=scene.alice.id,
            options={"steps": 3, "guidance": 2.5, "aspect": "16:9", "model": "tiny"},
        )
    )
    shown = await fake.wait_for(
        lambda: (m := fake.message(answer.original_message_id or 0)).content and m, what="the settings answer"
    )
    assert shown.ephemeral and "**steps**: 3" in shown.content
    stored = front.conn.hgetall(keys.member(scene.guild.id, scene.alice.id, "settings"))
    assert stored == {b"model": b"tiny", b"aspect": b"16:9", b"steps": b"3", b"guidance": b"2.5"}

    spec = queued_spec(front, front.job_of_message((await imagine(front, "defaults")).original_message_id or 0))
    assert (spec.steps, spec.guidance, spec.width, spec.height) == (3, 2.5, 40, 24)
    spec = queued_spec(
        front,
        front.job_of_message((await imagine(front, "flags win --steps 5 --ar 1:1", steps=4)).original_message_id or 0),
    )
    assert (spec.steps, spec.width, spec.height, spec.guidance) == (5, 32, 32, 2.5)
    spec = queued_spec(
        front,
        front.job_of_message((await imagine(front, "only bob's own", user=scene.bob.id)).original_message_id or 0),
    )
    assert spec.steps is None and spec.guidance is None and spec.width is None

    reset = await fake.wait_for_ack(
        await fake.slash("settings", channel_id=scene.channel.id, user_id=scene.alice.id, options={"reset": True})
    )
    await fake.wait_for(lambda: "no defaults" in fake.message(reset.original_message_id or 0).content, what="reset")
    assert front.conn.exists(keys.member(scene.guild.id, scene.alice.id, "settings")) == 0


async def test_negative_option_and_no_flag_join(front: Front) -> None:
    inter = await imagine(front, "a cube --no red", negative="blue")
    assert queued_spec(front, front.job_of_message(inter.original_message_id or 0)).negative_prompt == "blue, red"


async def test_refusals_are_private_and_name_the_problem(front: Front) -> None:
    fake, scene = front.fake, front.scene
    cases = {
        "a --steps 61": "steps must be at most 60",
        "a --model nope": "no model called `nope`",
        "--seed 3": "the prompt is empty",
        "a\u200b --ar 1:9": "too narrow",
    }
    for prompt, says in cases.items():
        inter = await fake.wait_for_ack(
            await fake.slash("imagine", channel_id=scene.channel.id, user_id=scene.alice.id, options={"prompt": prompt})
        )
        answer = await fake.wait_for(
            lambda i=inter: next((fake.message(m) for m in i.followup_ids if fake.message(m).ephemeral), None),
            what=prompt,
        )
        assert says in answer.content, (prompt, answer.content)
    assert [m for m in fake.messages(scene.channel.id) if not m.ephemeral] == []
    assert len(fair.order(front.conn)) == 0


async def test_autocomplete_offers_published_models_and_samplers(front: Front) -> None:
    fake, scene = front.fake, front.scene
    front.conn.hset(
        keys.MODELS,
        "sd15",
        json.dumps(
            {
                "name": "sd15",
                "description": "Stable Diffusion 1.5",
                "defaults": {"width": 512, "height": 512, "steps": 25, "guidance": 7.0, "sampler": "euler"},
            }
        ),
    )
    front.bot.store._models_at = float("-inf")  # skip the few seconds of caching
    models = await fake.autocomplete(
        "imagine", channel_id=scene.channel.id, user_id=scene.alice.id, focused="model", options={"model": ""}
    )
    assert [c["value"] for c in models] == ["tiny", "sd15"] and "(default)" in models[0]["name"]
    only = await fake.autocomplete(
        "imagine", channel_id=scene.channel.id, user_id=scene.alice.id, focused="model", options={"model": "sd"}
    )
    assert [c["value"] for c in only] == ["sd15"]
    samplers = await fake.autocomplete(
        "imagine", channel_id=scene.channel.id, user_id=scene.alice.id, focused="sampler", options={"sampler": "dpm"}
    )
    assert [c["value"] for c in samplers] == ["dpm++_2m", "dpm++_2m_karras"]
    # An aspect ratio for a model with other defaults is sized from that model's own pixel count.
    spec = queued_spec(
        front, front.job_of_message((await imagine(front, "big --model sd15 --ar 16:9")).original_message_id or 0)
    )
    assert (spec.width, spec.height) == (680, 384)


async def test_help_shows_examples_privately(front: Front) -> None:
    fake, scene = front.fake, front.scene
    inter = await fake.wait_for_ack(await fake.slash("help", channel_id=scene.channel.id, user_id=scene.bob.id))
    shown = fake.message(inter.original_message_id or 0)
    assert shown.ephemeral and "/imagine prompt:" in shown.embeds[0]["description"]
    assert "--ar 16:9" in shown.embeds[0]["description"]


async def test_commands_sync_to_the_development_server_only(front: Front) -> None:
    fake = front.fake
    assert {c.name for c in fake.commands(front.scene.guild.id)} == {
        "imagine",
        "animate",
        "settings",
        "help",
        "queue",
        "cancel",
        "mod",
    }
    assert fake.commands(None) == []  # no global sync on a plain start
    imagine_cmd = fake.find_command("imagine", front.scene.guild.id)
    assert {o["name"] for o in imagine_cmd.payload["options"]} == {
        "prompt",
        "negative",
        "count",
        "seed",
        "steps",
        "guidance",
        "aspect",
        "model",
        "sampler",
        "image",
    }


async def test_the_whole_job_path_in_process(front: Front) -> None:
    """Enqueued by the bot, run and delivered by the worker code, pressed again: the fast version of e2e."""
    fake = front.fake
    inter = await imagine(front, "in process --seed 5", count=4)
    await front.work()
    result = await fake.wait_for(
        lambda: (m := fake.message(inter.original_message_id or 0)).components and m, what="the result"
    )
    job_id = front.job_of_message(result.id)
    assert result.attachments[0].content_type == "image/png" and "seed 5–8" in result.content
    assert front.conn.hlen(keys.images(job_id)) == 4
    pressed = await fake.wait_for_ack(await fake.click(result.id, f"imagine:v:{job_id}:3", user_id=front.scene.bob.id))
    await fake.wait_for(lambda: front.conn.get(keys.message(pressed.original_message_id or 0)), what="V3 queued")
    spec = queued_spec(front, front.job_of_message(pressed.original_message_id or 0))
    assert spec.init_image is not None and spec.init_image.job_id == job_id and spec.init_image.index == 2
    assert spec.seed != 5 and spec.requester is not None and spec.requester.user_id == front.scene.bob.id
    await front.work()
    varied = await fake.wait_for(
        lambda: (m := fake.message(pressed.original_message_id or 0)).components and m, what="the variation"
    )
    assert "variation of image 3" in varied.content
