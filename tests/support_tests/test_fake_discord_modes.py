"""The fake as a separate process (driven over its control API), in a background thread, and the discord.py
patch helpers."""

from __future__ import annotations

import signal

import discord
import pytest
import requests
from discord.http import HTTPClient, handle_message_parameters

from tests.support import discord_patch
from tests.support.control import RemoteFakeDiscord, decode
from tests.support.fixtures import start_fake_process
from tests.support.scenario import Scene
from tests.support.threaded import FakeDiscordThread


@pytest.mark.asyncio
async def test_standalone_process_with_remote_control() -> None:
    proc, info = start_fake_process("--scene")
    try:
        scene: Scene = decode(info["scene"])
        assert info["api_base"].startswith("http://127.0.0.1:") and info["gateway_url"].startswith("ws://127.0.0.1:")
        discord_patch.apply(info["api_base"], info["gateway_url"])
        import asyncio

        http = HTTPClient(asyncio.get_running_loop())
        async with RemoteFakeDiscord(info["control_url"]) as remote:
            try:
                me = await http.static_login(info["token"])
                assert me["id"] == info["bot_user_id"]
                fault = await remote.fail_next("/channels/{channel_id}/messages", retry_after=0.05)
                assert fault.remaining == 1
                waiting = asyncio.create_task(remote.wait_for_message(scene.channel.id, lambda m: "hello" in m.content))
                with handle_message_parameters(content="hello from a bot") as params:
                    await http.send_message(scene.channel.id, params=params)
                msg = await asyncio.wait_for(waiting, 10)
                assert msg.content == "hello from a bot"
                calls = await remote.calls_to("POST", "/channels/{channel_id}/messages")
                assert [c.status for c in calls] == [429, 200]
                with pytest.raises(LookupError):
                    await remote.slash("nope", channel_id=scene.channel.id, user_id=scene.alice.id)
                assert await remote.take_errors() == []
            finally:
                await http.close()
                discord_patch.restore()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0


def test_background_thread_mode_for_sync_code() -> None:
    with FakeDiscordThread() as fake:
        scene = fake.default_scene()
        fake.fail_next("/channels/{channel_id}/messages", status=502)
        url = f"{fake.api_base}/channels/{scene.channel.id}/messages"
        headers = {"Authorization": f"Bot {fake.token}"}
        first = requests.post(url, json={"content": "one"}, headers=headers, timeout=5)
        second = requests.post(url, json={"content": "two"}, headers=headers, timeout=5)
        assert (first.status_code, second.status_code) == (502, 200)
        assert fake.wait_for_message(scene.channel.id, timeout=2).content == "two"
        assert fake.take_errors() == []


def test_patch_from_environment_and_restore() -> None:
    original = discord.http.Route.BASE
    assert discord_patch.apply_from_env({}) is False
    assert discord_patch.apply_from_env({discord_patch.API_BASE_ENV: "http://127.0.0.1:9/api/v10"}) is True
    try:
        assert discord.http.Route.BASE == "http://127.0.0.1:9/api/v10"
        assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == "ws://127.0.0.1:9/gateway"
    finally:
        discord_patch.restore()
    assert original == discord.http.Route.BASE
