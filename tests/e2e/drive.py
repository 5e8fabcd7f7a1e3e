"""Act as a member of a fake Discord running in another process, by hand: `/imagine`, then print what showed.

    python -m tests.support.fake_discord --scene          # prints one JSON line: api_base, token, control_url, scene
    DISCORD_TOKEN=... IMAGINE_DISCORD_API_BASE=... IMAGINE_DEV_GUILD_ID=<scene guild id> imagine up
    python -m tests.e2e.drive --control http://127.0.0.1:PORT/_fake "a red circle --seed 42" --count 4 --press r

It prints every version of the status message (queue position, progress) and saves the result to out/.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from tests.support.control import RemoteFakeDiscord


async def drive(args: argparse.Namespace) -> None:
    async with RemoteFakeDiscord(args.control) as fake:
        scene = await _scene(fake, args)
        options: dict[str, Any] = {"prompt": args.prompt}
        if args.count:
            options["count"] = args.count
        inter = await fake.slash("imagine", channel_id=scene["channel"], user_id=scene["user"], options=options)
        inter = await fake.wait_for_ack(inter.id, timeout=10)
        message = await _result(fake, inter.original_message_id, args.timeout)
        for version in [*message.edits, {"content": message.content}]:
            print("—", version["content"].replace("\n", " | "))
        Path("out").mkdir(exist_ok=True)
        for attachment in message.attachments:
            path = Path("out") / attachment.filename
            path.write_bytes(attachment.data)
            print("saved", path, f"({attachment.size} bytes)")
        if args.press:
            job = next(c for c in message.custom_ids() if c.startswith("imagine:r:")).split(":")[2]
            action, index = args.press[0], args.press[1:]
            custom_id = f"imagine:{action}:{job}" + (f":{index}" if index else "")
            pressed = await fake.click(message.id, custom_id, user_id=scene["user"])
            pressed = await fake.wait_for_ack(pressed.id, timeout=10)
            answer = await _result(fake, pressed.original_message_id, args.timeout, need_buttons=action in "vr")
            print("pressed", custom_id, "->", answer.content.replace("\n", " | "))


async def _scene(fake: RemoteFakeDiscord, args: argparse.Namespace) -> dict[str, int]:
    if args.channel and args.user:
        return {"channel": args.channel, "user": args.user}
    guild = await fake.create_guild("Manual")
    member = await fake.create_member(guild.id, "you")
    print(
        f"made a server {guild.id} with #general {guild.channel_ids[0]} and member {member.user_id}; "
        "commands show there only if the bot syncs globally (imagine bot --sync-global) or to that server"
    )
    return {"channel": guild.channel_ids[0], "user": member.user_id}


async def _result(fake: RemoteFakeDiscord, message_id: int, timeout: float, need_buttons: bool = True) -> Any:
    def ready(message: Any) -> Any:
        if message.attachments and (not need_buttons or message.components):
            return message
        return message if not need_buttons and message.content and not message.flags & 128 else None

    return await fake.wait_for(lambda: fake.message(message_id), ready, timeout=timeout, what="the result")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prompt")
    parser.add_argument("--control", required=True, help="the fake's control_url")
    parser.add_argument("--channel", type=int, help="a channel id of the fake's scene (else a server is made)")
    parser.add_argument("--user", type=int, help="the member to act as")
    parser.add_argument("--count", type=int)
    parser.add_argument("--press", help="then press a button: u2, v1, r (re-roll), i (info), d (delete)")
    parser.add_argument("--timeout", type=float, default=120.0)
    asyncio.run(drive(parser.parse_args()))


if __name__ == "__main__":
    main()
