"""Slash-command sync on deploy: global commands are synced when their own payload changed, never on every start.

The hash is of the JSON that `CommandTree.sync` would send (every global command's payload, sorted), kept in Redis
per application. A start whose commands hash the same as the last successful sync sends nothing (global sync is
rate limited and slow to show); a new or changed command syncs once, on the first start that has it. A failed
automatic sync is logged and the hash left as it was, so the next start tries again. `imagine bot --sync-global` syncs
whatever the hash says, and a development server (`IMAGINE_DEV_GUILD_ID`) gets the commands at every start,
without touching the global ones.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import discord
from discord import app_commands
from redis.asyncio import Redis as AsyncRedis

from imagine import keys

log = logging.getLogger(__name__)


async def payload(tree: app_commands.CommandTree[Any]) -> list[dict[str, Any]]:
    """The global commands as `tree.sync()` sends them (translated when the tree has a translator), sorted."""
    commands = tree.get_commands(guild=None)
    translator = tree.translator
    if translator is not None:
        found = [await command.get_translated_payload(tree, translator) for command in commands]
    else:
        found = [command.to_dict(tree) for command in commands]
    return sorted(found, key=lambda item: (item.get("type", 1), item["name"]))


def digest(commands: list[dict[str, Any]]) -> str:
    """A stable hash of command payloads (key order and list order do not matter to it)."""
    canonical = json.dumps(commands, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def sync_global_if_changed(
    tree: app_commands.CommandTree[Any], redis: AsyncRedis, application_id: int, *, force: bool = False
) -> bool:
    """Sync the global commands when their hash differs from the last synced one (or `force`); True if synced."""
    key = keys.synced_commands(application_id)
    wanted = digest(await payload(tree))
    stored = await redis.get(key)
    last = stored.decode() if isinstance(stored, bytes) else stored
    if last == wanted and not force:
        log.info("global commands unchanged since the last sync (%s); not syncing", wanted[:12])
        return False
    try:
        synced = await tree.sync()
    except discord.HTTPException as exc:
        if force:  # the owner asked for this sync: a failure stops the start, as it says why
            raise
        # The bot still runs with the commands Discord has; the hash is not stored, so the next start tries again.
        log.error("syncing the global commands failed (%s); they stay as they were until the next start", exc)
        return False
    await redis.set(key, wanted)
    log.info("synced %d global commands (%s); they may take a while to show everywhere", len(synced), wanted[:12])
    return True
