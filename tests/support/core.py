"""The server side of the fake: one aiohttp app on 127.0.0.1 serving REST, the gateway, attachments and control.

`FakeCore` owns the state and the sockets; `FakeDiscord` (scenario.py) adds what tests call.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

from aiohttp import web

from tests.support import permissions as P
from tests.support import spec
from tests.support.clock import Clock
from tests.support.gateway import Gateway
from tests.support.rest import Fault, handle_api
from tests.support.state import Channel, Guild, Member, Snowflakes, User, World

log = logging.getLogger(__name__)

# Importing the route modules registers their handlers.
from tests.support import routes_app, routes_channels, routes_interactions  # noqa: E402,F401


class FakeCore:
    """Server lifecycle, state, and the helpers route handlers share."""

    def __init__(
        self,
        *,
        token: str | None = None,
        application_id: int | None = None,
        bot_name: str = "imagine",
        allowed_privileged_intents: int = 0,
        heartbeat_interval_ms: int = 41250,
        validate: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.clock = Clock()
        ids = Snowflakes(self.clock)
        app_id = application_id or ids.next()
        self.world = World(
            self.clock, ids, token or f"fake.{secrets.token_urlsafe(24)}", app_id, User(app_id, bot_name, bot=True)
        )
        owner = User(self.world.ids.next(), "app-owner")
        self.world.users[owner.id] = owner
        self.world.owner_id = owner.id
        self.allowed_privileged_intents = allowed_privileged_intents
        self.validate = validate
        self.gateway = Gateway(self, heartbeat_interval_ms)
        self.faults: list[Fault] = []
        self.host, self.port = host, port
        self._runner: web.AppRunner | None = None

    # -- lifecycle --------------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_base(self) -> str:
        """What `discord.http.Route.BASE` must become."""
        return self.base_url + spec.API_PREFIX

    @property
    def gateway_url(self) -> str:
        """What `discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY` must become."""
        return f"ws://{self.host}:{self.port}/gateway"

    @property
    def token(self) -> str:
        return self.world.token

    @property
    def application_id(self) -> int:
        return self.world.application_id

    def urls(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "api_base": self.api_base,
            "gateway_url": self.gateway_url,
            "control_url": self.base_url + "/_fake",
            "token": self.token,
            "application_id": str(self.application_id),
            "bot_user_id": str(self.world.bot.id),
        }

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=256 * 1024 * 1024)

        async def api(request: web.Request) -> web.Response:
            return await handle_api(self, request)

        app.router.add_route("*", spec.API_PREFIX + "/{tail:.*}", api)
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_get("/attachments/{channel_id}/{attachment_id}/{filename}", self._attachment)
        from tests.support import control

        control.add_routes(app, self)
        return app

    async def start(self) -> None:
        """Bind 127.0.0.1 on a free port (or the one given) and start serving; warms the spec in a thread."""
        loading = asyncio.get_running_loop().run_in_executor(None, spec.openapi) if self.validate else None
        self._runner = web.AppRunner(self.build_app(), handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        if loading is not None:
            await loading

    async def close(self) -> None:
        await self.gateway.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Any:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- helpers for handlers ---------------------------------------------------------------------------------

    async def _attachment(self, request: web.Request) -> web.StreamResponse:
        att = self.world.attachments.get(int(request.match_info["attachment_id"]))
        if att is None or att.filename != request.match_info["filename"]:
            return web.Response(status=404, text="404: Not Found")
        return web.Response(body=att.data, content_type=att.content_type or "application/octet-stream")

    def bot_member(self, guild_id: int) -> Member | None:
        return self.world.members.get((guild_id, self.world.bot.id))

    def permissions_in(self, channel: Channel, user_id: int) -> int:
        world = self.world
        member = world.members.get((channel.guild_id, user_id))
        if member is None:
            return 0
        return P.channel_permissions(world, world.guilds[channel.guild_id], channel, member)

    def guild_of(self, channel: Channel) -> Guild:
        return self.world.guilds[channel.guild_id]
