"""Unit checks of the fake's rule books: the OpenAPI validator, permission arithmetic, mentions."""

from __future__ import annotations

import pytest

from tests.support import permissions as P
from tests.support import spec
from tests.support.clock import Clock
from tests.support.messages import compute_mentions
from tests.support.rest import ROUTES
from tests.support.state import Channel, Guild, Member, Message, Overwrite, Role, Snowflakes, User, World

BOT = {"Authorization": "Bot t"}


def test_validator_accepts_what_discord_accepts() -> None:
    assert spec.validate("POST", "/interactions/1/tok/callback", body={"type": 5}) == []
    reply = {"content": "hi", "message_reference": {"message_id": 123, "guild_id": 4}, "attachments": [{"id": 0}]}
    assert spec.validate("POST", "/channels/1/messages", headers=BOT, body=reply) == []
    assert spec.validate("PUT", "/channels/1/messages/2/reactions/🔄/@me", headers=BOT) == []


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "needle"),
    [
        ("POST", "/interactions/1/tok/callback", {}, {"type": 42}, "type"),
        ("POST", "/channels/1/messages", {}, {"content": "no auth"}, "Security"),
        (
            "POST",
            "/channels/1/messages",
            BOT,
            {
                "components": [
                    {"type": 1, "components": [{"type": 2, "style": 1, "label": "a", "custom_id": "x" * 101}]}
                ]
            },
            "custom_id",
        ),
        ("POST", "/channels/1/messages", BOT, {"message_reference": {"message_id": "12a"}}, "message_id"),
    ],
)
def test_validator_rejects(method: str, path: str, headers: dict, body: dict, needle: str) -> None:
    problems = spec.validate(method, path, headers=headers, body=body)
    assert problems and needle in problems[0]


def test_every_fake_route_is_in_the_spec() -> None:
    described = set(spec.operations())
    assert not [(r.method, r.template) for r in ROUTES if (r.method, r.template) not in described]


def _world() -> tuple[World, Guild, Channel]:
    clock = Clock()
    ids = Snowflakes(clock)
    world = World(clock, ids, "t", 1, User(1, "bot", bot=True))
    guild = Guild(10, "g", owner_id=99)
    world.guilds[10] = guild
    world.roles[10] = Role(10, 10, "@everyone", P.DEFAULT_EVERYONE)
    world.roles[11] = Role(11, 10, "mods", P.MANAGE_MESSAGES)
    channel = Channel(20, 10, "general")
    world.channels[20] = channel
    for uid in (2, 3):
        world.users[uid] = User(uid, f"u{uid}")
    return world, guild, channel


def test_channel_overwrites_apply_in_discord_order() -> None:
    world, guild, channel = _world()
    member = Member(10, 2, [11])
    channel.overwrites = [
        Overwrite(10, 0, deny=P.SEND_MESSAGES),  # @everyone may not talk here
        Overwrite(11, 0, allow=P.SEND_MESSAGES),  # ...but mods may
        Overwrite(2, 1, deny=P.MANAGE_MESSAGES),  # ...and this mod may not manage messages here
    ]
    perms = P.channel_permissions(world, guild, channel, member)
    assert perms & P.SEND_MESSAGES and not perms & P.MANAGE_MESSAGES
    assert not P.channel_permissions(world, guild, channel, Member(10, 3)) & P.SEND_MESSAGES
    channel.overwrites = [Overwrite(10, 0, deny=P.VIEW_CHANNEL)]
    assert P.channel_permissions(world, guild, channel, Member(10, 3)) == 0
    assert P.channel_permissions(world, guild, channel, Member(10, 99)) == P.ALL  # the owner


def test_mentions_follow_allowed_mentions() -> None:
    world, _, _ = _world()
    world.messages[5] = Message(5, 20, 10, 2, 0.0, content="original")

    def pinged(content: str, allowed: dict | None, reply: bool = False) -> tuple[list[int], bool]:
        msg = Message(
            6,
            20,
            10,
            1,
            0.0,
            content=content,
            allowed_mentions=allowed,
            message_reference={"message_id": 5} if reply else None,
        )
        compute_mentions(world, msg)
        return msg.mention_user_ids, msg.mention_everyone

    assert pinged("<@2> <@!3> @everyone", None) == ([2, 3], True)
    assert pinged("<@2> <@3> @everyone", {"parse": []}) == ([], False)
    assert pinged("<@2> <@3> @everyone", {"parse": [], "users": ["3"]}) == ([3], False)
    assert pinged("done", None, reply=True) == ([2], False)
    assert pinged("done", {"parse": [], "replied_user": False}, reply=True) == ([], False)
