"""Bad input, each case through the real bot against the fake Discord: a clear private refusal, nothing public, no
job queued, no crash (the bot answers a good request right after). Options are sent raw (`strict=False`), as a
modified client could, not only what Discord's own client allows."""

# ruff: noqa: F811  (fixtures imported from tests.bot.fixtures are parameters here)

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

import pytest
from PIL import Image

from imagine import fair, keys
from tests.bot.fixtures import Front, base_ctx, front, tiny_registry  # noqa: F401
from tests.support.actions import Upload
from tests.support.fixtures import discord_patched, fake_discord  # noqa: F401

pytestmark = pytest.mark.asyncio


def png(size: tuple[int, int] = (48, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(out, "PNG")
    return out.getvalue()


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.effect_noise((256, 256), 60).convert("RGB").save(out, "JPEG", quality=90)
    return out.getvalue()


def bomb(width: int = 60_000, height: int = 60_000) -> bytes:
    """A tiny PNG whose header claims 3.6 gigapixels (what a decompression bomb looks like before decoding)."""
    data = bytearray(png((8, 8)))
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return bytes(data)


def animated() -> bytes:
    frames = [Image.new("RGB", (32, 32), colour) for colour in ("red", "blue", "green")]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)
    return out.getvalue()


async def refusal(front: Front, options: dict[str, Any]) -> str:
    """Run /imagine with raw `options`; return the private answer (and check nothing public stayed)."""
    fake, scene = front.fake, front.scene
    inter = await fake.slash(
        "imagine", channel_id=scene.channel.id, user_id=scene.alice.id, options=options, strict=False
    )
    inter = await fake.wait_for_ack(inter)
    answer = await fake.wait_for(
        lambda: next(
            (
                fake.message(m)
                for m in [inter.original_message_id, *inter.followup_ids]
                if m and fake.message(m).ephemeral
            ),
            None,
        ),
        what=f"the refusal of {options!r:.80}",
    )
    assert answer.allowed_mentions in (None, {"parse": []}) and not answer.mention_everyone
    return answer.content


PROMPTS = {
    "empty": ("", "prompt"),
    "whitespace only": ("   \t  \n ", "empty"),
    "10,000 characters": ("a" * 10_000, "longer than"),
    "a control character": ("a cat\x07 on a mat", "control character"),
    "zero-width only": ("\u200b\u200c\u200d\ufeff", "empty"),
    "flags only": ("--seed 3", "empty"),
}
OPTIONS = {
    "steps out of range": ({"prompt": "a cat", "steps": 100_000}, "steps"),
    "steps not a number": ({"prompt": "a cat", "steps": "lots"}, "steps"),
    "seed negative": ({"prompt": "a cat", "seed": -5}, "seed"),
    "count out of range": ({"prompt": "a cat", "count": 9}, "count"),
    "guidance not a number": ({"prompt": "a cat", "guidance": "nan"}, "guidance"),
    "aspect not a choice": ({"prompt": "a cat", "aspect": "1:0"}, "above zero"),
    "unknown model": ({"prompt": "a cat", "model": "../../etc/passwd"}, "model"),
    "unknown sampler": ({"prompt": "a cat", "sampler": "warp-drive"}, "sampler"),
}
FLAGS = {
    "--ar 0:0": ("a cat --ar 0:0", "above zero"),
    "--seed -1": ("a cat --seed -1", "whole number"),
    "--steps 1e9": ("a cat --steps 1e9", "whole number"),
    "--cfg inf": ("a cat --cfg inf", "number"),
    "--ar 99999:1": ("a cat --ar 99999:1", "16:9"),
    "unknown flag": ("a cat --wat 3", "not a flag"),
}
UPLOADS = {
    "not an image": (Upload("cat.png", b"I am a text file wearing a .png"), "not an image"),
    "truncated": (Upload("cut.jpg", jpeg()[:1500]), "damaged or incomplete"),
    "a decompression bomb": (Upload("bomb.png", bomb()), "pixels"),
    "animated": (Upload("moving.gif", animated()), "animated"),
    "huge": (Upload("huge.png", png() + b"\0" * (10 * 1024 * 1024)), "the most I take"),
}


async def test_bad_prompts_are_refused_politely(front: Front) -> None:
    for case, (prompt, says) in PROMPTS.items():
        assert says in await refusal(front, {"prompt": prompt}), case
    await nothing_public_and_still_working(front)


async def test_bad_options_are_refused_politely(front: Front) -> None:
    for case, (options, says) in OPTIONS.items():
        assert says in (await refusal(front, options)).lower(), case
    await nothing_public_and_still_working(front)


async def test_garbage_inline_flags_are_refused_politely(front: Front) -> None:
    for case, (prompt, says) in FLAGS.items():
        assert says in await refusal(front, {"prompt": prompt}), case
    await nothing_public_and_still_working(front)


async def test_bad_attachments_are_refused_politely(front: Front) -> None:
    for case, (upload, says) in UPLOADS.items():
        assert says in await refusal(front, {"prompt": "like this", "image": upload}), case
    await nothing_public_and_still_working(front)


async def test_a_good_attachment_becomes_the_starting_picture(front: Front) -> None:
    fake, scene = front.fake, front.scene
    inter = await fake.wait_for_ack(
        await fake.slash(
            "imagine",
            channel_id=scene.channel.id,
            user_id=scene.alice.id,
            options={"prompt": "like this --seed 4", "image": Upload("mine.jpg", jpeg())},
        )
    )
    job_id = (await fake.wait_for(lambda: front.conn.get(keys.message(inter.original_message_id or 0)))).decode()
    from rq.job import Job
    from rq.serializers import JSONSerializer

    spec = Job.fetch(job_id, connection=front.conn, serializer=JSONSerializer).args[0]
    source = spec["init_image"]
    kept = front.conn.hget(keys.images(source["job_id"]), "0")
    assert kept is not None and kept.startswith(b"\x89PNG")  # re-encoded: a plain still PNG
    assert front.conn.ttl(keys.images(source["job_id"])) > 0
    await front.work()
    result = await fake.wait_for(lambda: (m := fake.message(inter.original_message_id or 0)).components and m)
    assert result.attachments and "variation of image 1" in result.content


async def test_mentions_in_a_prompt_never_ping(front: Front) -> None:
    fake, scene = front.fake, front.scene
    prompt = f"@everyone @here <@{scene.bob.id}> <@&{scene.moderator_role.id}> a cat --seed 1"
    inter = await fake.wait_for_ack(
        await fake.slash("imagine", channel_id=scene.channel.id, user_id=scene.alice.id, options={"prompt": prompt})
    )
    await fake.wait_for(lambda: front.conn.get(keys.message(inter.original_message_id or 0)))
    await front.work()
    result = await fake.wait_for(lambda: (m := fake.message(inter.original_message_id or 0)).components and m)
    bodies = [c.json for c in fake.world.calls if isinstance(c.json, dict)]
    echoes = [b for b in bodies if "@everyone" in str(b.get("content", ""))]
    assert len(echoes) >= 2, echoes  # the bot's "#1 in queue", any status edits, the result
    for payload in echoes:
        assert payload.get("allowed_mentions") == {"parse": []}, payload
    assert result.mention_user_ids == [] and result.mention_role_ids == [] and not result.mention_everyone
    assert "@everyone" in result.content  # echoed, not pinged


async def nothing_public_and_still_working(front: Front) -> None:
    fake, scene = front.fake, front.scene
    assert [m for m in fake.messages(scene.channel.id) if not m.ephemeral] == []
    assert len(fair.order(front.conn)) == 0
    inter = await fake.wait_for_ack(
        await fake.slash("imagine", channel_id=scene.channel.id, user_id=scene.bob.id, options={"prompt": "fine"})
    )
    await fake.wait_for(lambda: front.conn.get(keys.message(inter.original_message_id or 0)), what="a good request")
