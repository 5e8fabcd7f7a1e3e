"""`FakeDiscord`: the object tests hold. Build a world, act as members, inject faults, and read or await what
the app did.

    async with FakeDiscord() as fake:
        scene = await fake.default_scene()
        discord_patch.apply(fake.api_base, fake.gateway_url)
        ... start the bot with fake.token ...
        inter = await fake.slash("imagine", channel_id=scene.channel.id, user_id=scene.alice.id,
                                 options={"prompt": "a red cube"})
        await fake.wait_for_ack(inter)
        msg = await fake.wait_for_message(scene.channel.id, lambda m: m.attachments)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from tests.support import gateway as G
from tests.support import payloads
from tests.support import permissions as P
from tests.support.actions import MemberActions
from tests.support.core import FakeCore
from tests.support.rest import Fault
from tests.support.state import (
    Channel,
    Command,
    Guild,
    Interaction,
    Member,
    Message,
    Overwrite,
    RestCall,
    Role,
    User,
)

T = TypeVar("T")


@dataclass
class Scene:
    """A ready-made server: #general, a Moderator role (manage messages), and three members."""

    guild: Guild
    channel: Channel
    moderator_role: Role
    alice: Member
    bob: Member
    mod: Member


class FakeDiscord(MemberActions, FakeCore):
    """The fake Discord with its scenario API (see the module docstring)."""

    # -- building the world -----------------------------------------------------------------------------------

    async def create_guild(
        self,
        name: str = "Test Server",
        *,
        bot_permissions: int = P.DEFAULT_BOT,
        everyone_permissions: int = P.DEFAULT_EVERYONE,
        upload_limit: int = 10 * 1024 * 1024,
        channels: Iterable[str] = ("general",),
    ) -> Guild:
        """A server with its owner, @everyone, the bot (with a managed role) and the named text channels."""
        world = self.world
        owner = User(world.ids.next(), f"owner-{name.lower().replace(' ', '-')}")
        world.users[owner.id] = owner
        guild = Guild(world.ids.next(), name, owner.id, upload_limit=upload_limit)
        world.guilds[guild.id] = guild
        everyone = Role(guild.id, guild.id, "@everyone", everyone_permissions)
        bot_role = Role(world.ids.next(), guild.id, world.bot.username, bot_permissions, position=1, managed=True)
        for role in (everyone, bot_role):
            world.roles[role.id] = role
            guild.role_ids.append(role.id)
        for user_id, roles in ((owner.id, []), (world.bot.id, [bot_role.id])):
            world.members[(guild.id, user_id)] = Member(guild.id, user_id, roles, joined_at=world.clock.now())
            guild.member_ids.append(user_id)
        for channel_name in channels:
            channel = Channel(world.ids.next(), guild.id, channel_name, position=len(guild.channel_ids))
            world.channels[channel.id] = channel
            guild.channel_ids.append(channel.id)
        for session in self.gateway.live_sessions():
            if session.intents & G.GUILDS and session.wants(guild.id):
                await self.gateway._send_event(session, "GUILD_CREATE", self.gateway._guild_create(session, guild.id))
        world.changed()
        return guild

    async def create_role(self, guild_id: int, name: str, permissions: int = 0, *, mentionable: bool = False) -> Role:
        world = self.world
        guild = world.guilds[guild_id]
        role = Role(
            world.ids.next(), guild_id, name, permissions, position=len(guild.role_ids), mentionable=mentionable
        )
        world.roles[role.id] = role
        guild.role_ids.append(role.id)
        await self._dispatch(
            "GUILD_ROLE_CREATE", {"guild_id": str(guild_id), "role": payloads.role_json(role)}, guild_id
        )
        return role

    async def set_role_permissions(self, role_id: int, permissions: int) -> Role:
        role = self.world.roles[role_id]
        role.permissions = permissions
        await self._dispatch(
            "GUILD_ROLE_UPDATE", {"guild_id": str(role.guild_id), "role": payloads.role_json(role)}, role.guild_id
        )
        return role

    async def create_channel(
        self, guild_id: int, name: str, *, overwrites: Iterable[Overwrite] = (), topic: str | None = None
    ) -> Channel:
        world = self.world
        guild = world.guilds[guild_id]
        channel = Channel(
            world.ids.next(), guild_id, name, position=len(guild.channel_ids), overwrites=list(overwrites), topic=topic
        )
        world.channels[channel.id] = channel
        guild.channel_ids.append(channel.id)
        await self._dispatch("CHANNEL_CREATE", payloads.channel_json(channel), guild_id)
        return channel

    async def set_overwrite(
        self, channel_id: int, target_id: int, *, member: bool = False, allow: int = 0, deny: int = 0
    ) -> Channel:
        """Set (replace) the overwrite for a role (default) or a member on a channel."""
        channel = self.world.channels[channel_id]
        kind = 1 if member else 0
        channel.overwrites = [o for o in channel.overwrites if (o.type, o.id) != (kind, target_id)]
        channel.overwrites.append(Overwrite(target_id, kind, allow, deny))
        await self._dispatch("CHANNEL_UPDATE", payloads.channel_json(channel), channel.guild_id)
        return channel

    async def create_member(
        self, guild_id: int, username: str, *, roles: Iterable[int] = (), nick: str | None = None, bot: bool = False
    ) -> Member:
        """A new user who joins the server; `member.user_id` is the id to act as."""
        world = self.world
        user = User(world.ids.next(), username, bot=bot)
        world.users[user.id] = user
        member = Member(guild_id, user.id, list(roles), nick, joined_at=world.clock.now())
        world.members[(guild_id, user.id)] = member
        world.guilds[guild_id].member_ids.append(user.id)
        data = {**payloads.member_json(world, member), "guild_id": str(guild_id)}
        await self._dispatch("GUILD_MEMBER_ADD", data, guild_id)
        return member

    async def set_member_roles(self, guild_id: int, user_id: int, roles: Iterable[int]) -> Member:
        member = self.world.member(guild_id, user_id)
        member.role_ids = list(roles)
        data = {**payloads.member_json(self.world, member), "guild_id": str(guild_id)}
        await self._dispatch("GUILD_MEMBER_UPDATE", data, guild_id)
        return member

    async def set_upload_limit(self, guild_id: int, limit: int) -> None:
        """Per-file upload limit in bytes; also the interactions' `attachment_size_limit`."""
        self.world.guilds[guild_id].upload_limit = limit

    async def default_scene(self, *, upload_limit: int = 10 * 1024 * 1024) -> Scene:
        guild = await self.create_guild("Test Server", upload_limit=upload_limit)
        channel = self.world.channels[guild.channel_ids[0]]
        role = await self.create_role(guild.id, "Moderator", P.MANAGE_MESSAGES | P.KICK_MEMBERS)
        alice = await self.create_member(guild.id, "alice")
        bob = await self.create_member(guild.id, "bob")
        mod = await self.create_member(guild.id, "mod", roles=[role.id])
        return Scene(guild, channel, role, alice, bob, mod)

    async def _dispatch(self, event: str, data: dict[str, Any], guild_id: int | None) -> None:
        await self.gateway.dispatch(event, data, guild_id=guild_id)
        self.world.changed()

    # -- faults, clock, gateway control -----------------------------------------------------------------------

    def fail_next(
        self,
        route: str | None = None,
        *,
        method: str | None = None,
        count: int = 1,
        status: int | None = 429,
        retry_after: float = 0.05,
        is_global: bool = False,
        delay: float = 0.0,
        via: bool = True,
        when: Callable[[RestCall], bool] | None = None,
    ) -> Fault:
        """Make the next `count` matching requests fail (429 with `retry_after` and Via, or any status), or
        answer late (`status=None, delay=...`). `route` is a spec template or a glob on the path; `when`, a test
        on the call itself (its `json`), narrows it further."""
        fault = Fault(route, method, status, count, retry_after, is_global, delay, via, when=when)
        self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        self.faults.clear()

    async def advance_clock(self, seconds: float) -> None:
        """Jump the fake's clock (e.g. 15 * 60 to expire every interaction token)."""
        self.clock.advance(seconds)
        self.world.changed()

    async def reconnect_gateway(self, *, resume: bool = True) -> None:
        """Ask connected bots to reconnect: op 7 (they RESUME) or op 9 (they must IDENTIFY again)."""
        await self.gateway.send_op(G.RECONNECT if resume else G.INVALID_SESSION, None if resume else False)

    async def drop_gateway(self, code: int = 4000) -> None:
        """Close every gateway socket as a network failure would (4000: the bot may resume)."""
        await self.gateway.close_all(code)

    # -- reading ----------------------------------------------------------------------------------------------

    def messages(self, channel_id: int, *, include_deleted: bool = False) -> list[Message]:
        """The channel's messages, oldest first (ephemeral ones included: check `.ephemeral`)."""
        found = [m for m in self.world.messages.values() if m.channel_id == channel_id]
        return sorted((m for m in found if include_deleted or not m.deleted), key=lambda m: m.id)

    def message(self, message_id: int) -> Message:
        return self.world.messages[message_id]

    def interaction(self, interaction_id: int) -> Interaction:
        return self.world.interactions[interaction_id]

    def commands(self, guild_id: int | None = None) -> list[Command]:
        """Synced commands: global ones for `guild_id=None`, else that server's."""
        return [c for c in self.world.commands.values() if c.guild_id == guild_id]

    def calls_to(self, method: str | None = None, route: str | None = None) -> list[RestCall]:
        """Recorded REST calls, filtered by method and spec template (e.g. "/channels/{channel_id}/messages")."""
        return [
            c
            for c in self.world.calls
            if (method is None or c.method == method.upper()) and (route is None or c.route == route)
        ]

    def gateway_stats(self) -> dict[str, int]:
        g = self.gateway
        return {
            "identifies": g.identifies,
            "resumes": g.resumes,
            "connected": sum(1 for s in g.live_sessions() if s.connected),
        }

    def take_errors(self) -> list[str]:
        """Findings so far (spec violations, 401s, unimplemented routes, misuse), cleared."""
        errors, self.world.errors[:] = list(self.world.errors), []
        return errors

    def assert_clean(self) -> None:
        """Fail if any request broke Discord's rules; fixtures call this at teardown."""
        errors = self.take_errors()
        assert not errors, "fake Discord saw invalid requests:\n  " + "\n  ".join(errors)

    # -- waiting ----------------------------------------------------------------------------------------------

    async def wait_for(self, check: Callable[[], T | None], *, timeout: float = 5.0, what: str = "condition") -> T:
        """Re-evaluate `check` after every state change until it returns something truthy."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = check()
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
            with contextlib.suppress(TimeoutError):
                await self.world.wait_change(min(remaining, 0.5))

    async def wait_for_message(
        self, channel_id: int, predicate: Callable[[Message], Any] | None = None, timeout: float = 5.0
    ) -> Message:
        """The first (oldest) live message in the channel that satisfies `predicate`, now or after changes."""

        def check() -> Message | None:
            return next((m for m in self.messages(channel_id) if predicate is None or predicate(m)), None)

        return await self.wait_for(check, timeout=timeout, what=f"a message in channel {channel_id}")

    async def wait_for_ack(self, interaction: Interaction | int, *, timeout: float = 5.0) -> Interaction:
        inter = self.interaction(interaction if isinstance(interaction, int) else interaction.id)
        return await self.wait_for(
            lambda: inter if inter.acked else None, timeout=timeout, what=f"acknowledgement of interaction {inter.id}"
        )

    async def wait_for_call(
        self, method: str, route: str, predicate: Callable[[RestCall], Any] | None = None, *, timeout: float = 5.0
    ) -> RestCall:
        def check() -> RestCall | None:
            return next(
                (c for c in self.calls_to(method, route) if c.status and (predicate is None or predicate(c))), None
            )

        return await self.wait_for(check, timeout=timeout, what=f"{method} {route}")

    async def wait_for_bot(self, timeout: float = 10.0) -> None:
        """Until a bot has identified (READY and GUILD_CREATEs sent) and is connected."""
        await self.wait_for(
            lambda: any(s.connected for s in self.gateway.live_sessions()),
            timeout=timeout,
            what="a bot connected to the gateway",
        )

    async def wait_for_commands(self, *names: str, guild_id: int | None = None, timeout: float = 10.0) -> None:
        """Until commands with these names are synced (to `guild_id`, or globally)."""

        def check() -> bool:
            return set(names) <= {c.name for c in self.commands(guild_id)}

        await self.wait_for(check, timeout=timeout, what=f"commands {names} synced")
