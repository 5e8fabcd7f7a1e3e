"""What the fake Discord knows: users, servers, channels, messages, interactions, and the REST calls it saw.

Plain dataclasses with ids rather than object links, so a test can read them, and the control API can send
them to another process, without dragging a whole graph along.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from tests.support.clock import Clock

DISCORD_EPOCH_MS = 1420070400000

# Message flags
SUPPRESS_EMBEDS = 1 << 2
EPHEMERAL = 1 << 6
LOADING = 1 << 7
SUPPRESS_NOTIFICATIONS = 1 << 12
IS_COMPONENTS_V2 = 1 << 15

# Interaction types
PING, APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 1, 2, 3, 4, 5


class Snowflakes:
    """Ids shaped like Discord's (timestamp in the high bits), so discord.py's `created_at` makes sense."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.last = 0

    def next(self) -> int:
        candidate = (int(self.clock.now() * 1000) - DISCORD_EPOCH_MS) << 22 | 1 << 17
        self.last = max(candidate, self.last + 1)
        return self.last


@dataclass
class User:
    id: int
    username: str
    bot: bool = False
    global_name: str | None = None


@dataclass
class Role:
    id: int
    guild_id: int
    name: str
    permissions: int
    position: int = 0
    managed: bool = False
    mentionable: bool = False


@dataclass
class Overwrite:
    """A channel permission overwrite; `type` 0 targets a role, 1 a member."""

    id: int
    type: int
    allow: int = 0
    deny: int = 0


@dataclass
class Channel:
    id: int
    guild_id: int
    name: str
    type: int = 0
    position: int = 0
    overwrites: list[Overwrite] = field(default_factory=list)
    topic: str | None = None
    nsfw: bool = False


@dataclass
class Guild:
    id: int
    name: str
    owner_id: int
    upload_limit: int = 10 * 1024 * 1024
    locale: str = "en-US"
    channel_ids: list[int] = field(default_factory=list)
    role_ids: list[int] = field(default_factory=list)
    member_ids: list[int] = field(default_factory=list)


@dataclass
class Member:
    guild_id: int
    user_id: int
    role_ids: list[int] = field(default_factory=list)
    nick: str | None = None
    joined_at: float = 0.0

    @property
    def id(self) -> int:
        """The member's user id (what tests pass as `user_id`)."""
        return self.user_id


@dataclass
class Attachment:
    id: int
    channel_id: int
    filename: str
    data: bytes
    content_type: str | None = None
    description: str | None = None
    width: int | None = None
    height: int | None = None
    url: str = ""

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class Message:
    """A message as the channel shows it now; `edits` keeps every earlier version (oldest first)."""

    id: int
    channel_id: int
    guild_id: int | None
    author_id: int
    created_at: float
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    flags: int = 0
    type: int = 0
    tts: bool = False
    message_reference: dict[str, Any] | None = None
    allowed_mentions: dict[str, Any] | None = None
    webhook_id: int | None = None
    interaction_id: int | None = None
    mention_user_ids: list[int] = field(default_factory=list)
    mention_role_ids: list[int] = field(default_factory=list)
    mention_everyone: bool = False
    reactions: dict[str, list[int]] = field(default_factory=dict)
    edits: list[dict[str, Any]] = field(default_factory=list)
    edited_at: float | None = None
    deleted: bool = False
    #: The `nonce` it was created with (`enforce_nonce` makes a repeat return this message instead of a new one).
    nonce: str | None = None

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    @property
    def loading(self) -> bool:
        return bool(self.flags & LOADING)

    def custom_ids(self) -> list[str]:
        """Every component custom_id in the message, in order (rows, sections and containers flattened)."""
        found: list[str] = []

        def walk(items: list[dict[str, Any]]) -> None:
            for c in items:
                if "custom_id" in c:
                    found.append(c["custom_id"])
                walk(c.get("components") or [])
                if isinstance(c.get("accessory"), dict):
                    walk([c["accessory"]])

        walk(self.components)
        return found

    def snapshot(self) -> dict[str, Any]:
        return {
            "content": self.content,
            "embeds": self.embeds,
            "components": self.components,
            "attachments": [(a.id, a.filename, a.size) for a in self.attachments],
            "flags": self.flags,
            "edited_at": self.edited_at,
        }


@dataclass
class Command:
    id: int
    application_id: int
    guild_id: int | None
    name: str
    type: int
    payload: dict[str, Any]
    version: int = 1


@dataclass
class Interaction:
    """One interaction and everything the app did with it."""

    id: int
    token: str
    type: int
    application_id: int
    guild_id: int | None
    channel_id: int
    user_id: int
    data: dict[str, Any]
    created_at: float
    message_id: int | None = None
    acked_at: float | None = None
    ack_type: int | None = None
    ack_payload: dict[str, Any] | None = None
    original_message_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    modal: dict[str, Any] | None = None
    choices: list[dict[str, Any]] | None = None

    @property
    def acked(self) -> bool:
        return self.acked_at is not None


@dataclass
class FilePart:
    field: str
    filename: str
    content_type: str
    data: bytes


@dataclass
class RestCall:
    """One REST request as the fake received it, and what it answered."""

    method: str
    path: str
    route: str | None
    query: dict[str, str]
    json: Any
    files: list[FilePart]
    authorized: bool
    at: float
    status: int = 0
    response: Any = None


class World:
    """All state, plus a change counter that waiters sleep on (one event loop owns it)."""

    def __init__(self, clock: Clock, ids: Snowflakes, token: str, application_id: int, bot_user: User) -> None:
        self.clock = clock
        self.ids = ids
        self.token = token
        self.application_id = application_id
        self.bot = bot_user
        self.users: dict[int, User] = {bot_user.id: bot_user}
        self.owner_id = bot_user.id  # the app's owner; FakeCore makes a separate user for it
        self.guilds: dict[int, Guild] = {}
        self.roles: dict[int, Role] = {}
        self.channels: dict[int, Channel] = {}
        self.members: dict[tuple[int, int], Member] = {}
        self.messages: dict[int, Message] = {}
        self.attachments: dict[int, Attachment] = {}
        self.commands: dict[int, Command] = {}
        self.interactions: dict[int, Interaction] = {}
        self.tokens: dict[str, int] = {}
        self.calls: list[RestCall] = []
        self.errors: list[str] = []
        self.version = 0
        self._changed: asyncio.Event | None = None

    def changed(self) -> None:
        """Wake every waiter; call after any mutation a test might wait for."""
        self.version += 1
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def wait_change(self, timeout: float) -> None:
        if self._changed is None:
            self._changed = asyncio.Event()
        await asyncio.wait_for(self._changed.wait(), timeout)

    def error(self, text: str) -> None:
        """A finding that should fail the test (invalid request, unimplemented route, bot misuse)."""
        self.errors.append(text)
        self.changed()

    def member(self, guild_id: int, user_id: int) -> Member:
        return self.members[(guild_id, user_id)]
