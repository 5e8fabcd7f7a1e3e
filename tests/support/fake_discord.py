"""Run the fake Discord as its own process: `python -m tests.support.fake_discord --port N [--scene]`.

Prints one JSON line with its URLs (and the default scene's ids with --scene), then serves until SIGINT/SIGTERM.
Drive it from tests with `RemoteFakeDiscord(urls["control_url"])`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys

from tests.support import gateway as G
from tests.support.control import encode
from tests.support.scenario import FakeDiscord


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.support.fake_discord", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--token", default=None, help="bot token to accept (default: random, printed)")
    parser.add_argument("--application-id", type=int, default=None)
    parser.add_argument("--scene", action="store_true", help="create the default server, channel and members")
    parser.add_argument(
        "--privileged", default="", help="comma list of allowed privileged intents: members,presences,message_content"
    )
    parser.add_argument("--no-validate", action="store_true", help="skip OpenAPI validation")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    bits = {"members": G.GUILD_MEMBERS, "presences": G.GUILD_PRESENCES, "message_content": G.MESSAGE_CONTENT}
    allowed = 0
    for name in filter(None, args.privileged.split(",")):
        allowed |= bits[name.strip()]
    fake = FakeDiscord(
        token=args.token,
        application_id=args.application_id,
        host=args.host,
        port=args.port,
        allowed_privileged_intents=allowed,
        validate=not args.no_validate,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with fake:
        info = fake.urls()
        if args.scene:
            info["scene"] = encode(await fake.default_scene())
        print(json.dumps(info), flush=True)
        await stop.wait()
    for error in fake.take_errors():
        print(f"fake discord: {error}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
