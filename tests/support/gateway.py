"""The gateway: a websocket speaking Discord's v10 JSON protocol (optionally zlib-stream compressed).

HELLO, IDENTIFY -> READY and one GUILD_CREATE per server, heartbeats and their ACKs, RESUME with replay of missed
events, REQUEST_GUILD_MEMBERS, and dispatches filtered by the intents the app identified with, as Discord does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from tests.support import payloads

if TYPE_CHECKING:
    from tests.support.core import FakeCore

log = logging.getLogger(__name__)

DISPATCH, HEARTBEAT, IDENTIFY, PRESENCE_UPDATE, VOICE_STATE = 0, 1, 2, 3, 4
RESUME, RECONNECT, REQUEST_MEMBERS, INVALID_SESSION, HELLO, HEARTBEAT_ACK = 6, 7, 8, 9, 10, 11

GUILDS, GUILD_MEMBERS, GUILD_PRESENCES = 1 << 0, 1 << 1, 1 << 8
GUILD_MESSAGES, GUILD_MESSAGE_REACTIONS, MESSAGE_CONTENT = 1 << 9, 1 << 10, 1 << 15
PRIVILEGED = GUILD_MEMBERS | GUILD_PRESENCES | MESSAGE_CONTENT

#: Guild events and the intent Discord requires before it sends them.
EVENT_INTENTS = {
    "GUILD_CREATE": GUILDS,
    "GUILD_UPDATE": GUILDS,
    "GUILD_DELETE": GUILDS,
    "GUILD_ROLE_CREATE": GUILDS,
    "GUILD_ROLE_UPDATE": GUILDS,
    "CHANNEL_CREATE": GUILDS,
    "CHANNEL_UPDATE": GUILDS,
    "GUILD_MEMBER_ADD": GUILD_MEMBERS,
    "GUILD_MEMBER_UPDATE": GUILD_MEMBERS,
    "GUILD_MEMBER_REMOVE": GUILD_MEMBERS,
    "MESSAGE_CREATE": GUILD_MESSAGES,
    "MESSAGE_UPDATE": GUILD_MESSAGES,
    "MESSAGE_DELETE": GUILD_MESSAGES,
    "MESSAGE_REACTION_ADD": GUILD_MESSAGE_REACTIONS,
    "MESSAGE_REACTION_REMOVE": GUILD_MESSAGE_REACTIONS,
    "MESSAGE_REACTION_REMOVE_ALL": GUILD_MESSAGE_REACTIONS,
    "MESSAGE_REACTION_REMOVE_EMOJI": GUILD_MESSAGE_REACTIONS,
}

BUFFER_LIMIT = 2000


@dataclass
class Session:
    """One identified gateway session; it outlives its socket so that RESUME can replay what was missed."""

    id: str
    intents: int
    shard: tuple[int, int]
    ws: web.WebSocketResponse | None = None
    seq: int = 0
    buffer: list[dict[str, Any]] = field(default_factory=list)
    compressor: Any = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    ready: bool = False
    heartbeats: int = 0

    @property
    def connected(self) -> bool:
        return self.ws is not None and not self.ws.closed

    def wants(self, guild_id: int | None) -> bool:
        shard_id, count = self.shard
        return guild_id is None or (guild_id >> 22) % count == shard_id


class Gateway:
    """Accepts connections at /gateway and fans dispatches out to live sessions."""

    def __init__(self, core: FakeCore, heartbeat_interval_ms: int = 41250) -> None:
        self.core = core
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.sessions: dict[str, Session] = {}
        self.sockets: set[web.WebSocketResponse] = set()
        self.identifies = 0
        self.resumes = 0

    # -- connection -------------------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        self.sockets.add(ws)
        query = request.query
        compressor = zlib.compressobj() if query.get("compress") == "zlib-stream" else None
        state: dict[str, Any] = {"ws": ws, "compressor": compressor, "lock": asyncio.Lock(), "session": None}
        try:
            if query.get("v") != "10" or query.get("encoding", "json") != "json":
                self.core.world.error(f"gateway: unsupported query {dict(query)}")
                await ws.close(code=4012, message=b"Invalid API version")
                return ws
            await self._send_raw(state, {"op": HELLO, "d": {"heartbeat_interval": self.heartbeat_interval_ms}})
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    payload = json.loads(msg.data)
                except ValueError:
                    await ws.close(code=4002, message=b"Decode error")
                    break
                await self._on_payload(state, payload)
        finally:
            self.sockets.discard(ws)
            session = state["session"]
            if session is not None and session.ws is ws:
                session.ws = None
        return ws

    async def _on_payload(self, state: dict[str, Any], payload: dict[str, Any]) -> None:
        ws: web.WebSocketResponse = state["ws"]
        op, data = payload.get("op"), payload.get("d")
        if op == HEARTBEAT:
            if state["session"] is not None:
                state["session"].heartbeats += 1
            await self._send_raw(state, {"op": HEARTBEAT_ACK, "d": None})
        elif op == IDENTIFY:
            await self._identify(state, data or {})
        elif op == RESUME:
            await self._resume(state, data or {})
        elif op == REQUEST_MEMBERS:
            await self._request_members(state, data or {})
        elif op in (PRESENCE_UPDATE, VOICE_STATE):
            pass
        else:
            await ws.close(code=4001, message=b"Unknown opcode")

    async def _identify(self, state: dict[str, Any], data: dict[str, Any]) -> None:
        ws: web.WebSocketResponse = state["ws"]
        if state["session"] is not None:
            await ws.close(code=4005, message=b"Already authenticated")
            return
        if data.get("token") != self.core.world.token:
            await ws.close(code=4004, message=b"Authentication failed")
            return
        intents = data.get("intents")
        if not isinstance(intents, int) or intents < 0 or intents >= 1 << 26:
            await ws.close(code=4013, message=b"Invalid intent(s)")
            return
        if intents & PRIVILEGED & ~self.core.allowed_privileged_intents:
            await ws.close(code=4014, message=b"Disallowed intent(s)")
            return
        shard = tuple(data.get("shard") or (0, 1))
        session = Session(
            id=secrets.token_hex(16),
            intents=intents,
            shard=(int(shard[0]), int(shard[1])),
            ws=ws,
            compressor=state["compressor"],
            lock=state["lock"],
        )
        self.sessions[session.id] = session
        state["session"] = session
        self.identifies += 1
        world = self.core.world
        guilds = [g for g in world.guilds.values() if session.wants(g.id)]
        ready = {
            "v": 10,
            "user": payloads.user_json(world.bot),
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.core.gateway_url,
            "shard": list(session.shard),
            "application": {"id": str(world.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "geo_ordered_rtc_regions": ["local"],
            "guild_join_requests": [],
            "auth": {},
            "user_settings": {},
            "_trace": ["fake-discord"],
        }
        await self._send_event(session, "READY", ready)
        if intents & GUILDS:
            for guild in guilds:
                await self._send_event(session, "GUILD_CREATE", self._guild_create(session, guild.id))
        session.ready = True
        world.changed()

    def _guild_create(self, session: Session, guild_id: int) -> dict[str, Any]:
        world = self.core.world
        return payloads.guild_create_json(
            world, world.guilds[guild_id], all_members=bool(session.intents & GUILD_PRESENCES)
        )

    async def _resume(self, state: dict[str, Any], data: dict[str, Any]) -> None:
        session = self.sessions.get(str(data.get("session_id")))
        if session is None or data.get("token") != self.core.world.token or session.connected:
            await self._send_raw(state, {"op": INVALID_SESSION, "d": False})
            return
        session.ws, session.compressor, session.lock = state["ws"], state["compressor"], state["lock"]
        state["session"] = session
        self.resumes += 1
        since = int(data.get("seq") or 0)
        for payload in [p for p in session.buffer if p["s"] > since]:
            await self._write(session, payload)
        await self._send_event(session, "RESUMED", {"_trace": ["fake-discord"]})
        self.core.world.changed()

    async def _request_members(self, state: dict[str, Any], data: dict[str, Any]) -> None:
        session: Session | None = state["session"]
        if session is None:
            await state["ws"].close(code=4003, message=b"Not authenticated")
            return
        world = self.core.world
        guild_id = int(data.get("guild_id", 0))
        guild = world.guilds.get(guild_id)
        members = []
        if guild is not None and session.intents & GUILD_MEMBERS:
            query = str(data.get("query") or "").lower()
            wanted = {int(u) for u in data.get("user_ids") or []}
            for user_id in guild.member_ids:
                user = world.users[user_id]
                if (wanted and user_id in wanted) or (not wanted and user.username.lower().startswith(query)):
                    members.append(payloads.member_json(world, world.member(guild_id, user_id)))
        chunk = {
            "guild_id": str(guild_id),
            "members": members,
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
            "presences": [],
        }
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        await self._send_event(session, "GUILD_MEMBERS_CHUNK", chunk)

    # -- sending ----------------------------------------------------------------------------------------------

    async def _send_raw(self, state: dict[str, Any], payload: dict[str, Any]) -> None:
        async with state["lock"]:
            await self._frame(state["ws"], state["compressor"], payload)

    @staticmethod
    async def _frame(ws: web.WebSocketResponse, compressor: Any, payload: dict[str, Any]) -> None:
        text = json.dumps(payload, separators=(",", ":"))
        if compressor is not None:
            await ws.send_bytes(compressor.compress(text.encode()) + compressor.flush(zlib.Z_SYNC_FLUSH))
        else:
            await ws.send_str(text)

    async def _write(self, session: Session, payload: dict[str, Any]) -> None:
        if not session.connected:
            return
        async with session.lock:
            assert session.ws is not None
            try:
                await self._frame(session.ws, session.compressor, payload)
            except ConnectionError:
                session.ws = None

    async def _send_event(self, session: Session, event: str, data: dict[str, Any]) -> None:
        session.seq += 1
        payload = {"op": DISPATCH, "t": event, "s": session.seq, "d": data}
        session.buffer.append(payload)
        del session.buffer[:-BUFFER_LIMIT]
        await self._write(session, payload)

    # -- dispatch ---------------------------------------------------------------------------------------------

    def live_sessions(self) -> list[Session]:
        return [s for s in self.sessions.values() if s.ready]

    async def dispatch(self, event: str, data: dict[str, Any], *, guild_id: int | None = None) -> int:
        """Send an event to every session entitled to it; returns how many sessions got it (buffered counts)."""
        needed = EVENT_INTENTS.get(event, 0)
        sent = 0
        for session in self.live_sessions():
            if not session.wants(guild_id) or (needed and not session.intents & needed):
                continue
            body = data
            if event in ("MESSAGE_CREATE", "MESSAGE_UPDATE") and not self._sees_content(session, data):
                body = payloads.strip_content(data)
            await self._send_event(session, event, body)
            sent += 1
        return sent

    async def dispatch_one(self, event: str, data: dict[str, Any], *, guild_id: int | None) -> Session | None:
        """Interactions go to one session only: the newest connected one (else the newest at all, buffered)."""
        candidates = [s for s in self.live_sessions() if s.wants(guild_id)]
        if not candidates:
            return None
        connected = [s for s in candidates if s.connected]
        session = (connected or candidates)[-1]
        await self._send_event(session, event, data)
        return session

    def _sees_content(self, session: Session, data: dict[str, Any]) -> bool:
        if session.intents & MESSAGE_CONTENT:
            return True
        bot_id = str(self.core.world.bot.id)
        author = (data.get("author") or {}).get("id")
        return author == bot_id or any(u.get("id") == bot_id for u in data.get("mentions") or [])

    async def send_op(self, op: int, data: Any) -> None:
        """Send a raw opcode (RECONNECT, INVALID_SESSION...) to every connected session."""
        for session in self.live_sessions():
            if session.connected:
                async with session.lock:
                    assert session.ws is not None
                    await self._frame(session.ws, session.compressor, {"op": op, "d": data})

    async def close_all(self, code: int = 1001) -> None:
        for ws in list(self.sockets):
            await ws.close(code=code, message=b"fake discord closing")
