"""Slash command options as a member's Discord client builds them: typed values, subcommand nesting, `resolved`
users, roles, channels and attachments, and (strict mode) the client-side checks on choices, ranges, lengths."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.support import payloads
from tests.support.state import Attachment, Command

if TYPE_CHECKING:
    from tests.support.actions import MemberActions as FakeDiscord

STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE, MENTIONABLE, NUMBER, ATTACHMENT = 3, 4, 5, 6, 7, 8, 9, 10, 11


def build_options(
    fake: FakeDiscord,
    cmd: Command,
    subcommand: str | None,
    values: dict[str, Any],
    channel_id: int,
    resolved: dict[str, dict[str, Any]],
    *,
    strict: bool,
    focused: str | None,
    user_id: int | None = None,
) -> list[dict[str, Any]]:
    defs: list[dict[str, Any]] = cmd.payload.get("options") or []
    path = subcommand.split() if subcommand else []
    wrappers: list[dict[str, Any]] = []
    for part in path:
        sub = next((o for o in defs if o["name"] == part and o.get("type") in (1, 2)), None)
        if sub is None:
            raise LookupError(f"/{cmd.name} has no subcommand {part!r}")
        wrappers.append({"type": sub["type"], "name": part})
        defs = sub.get("options") or []
    built = []
    by_name = {d["name"]: d for d in defs}
    for key in values:
        if key not in by_name:
            raise LookupError(f"/{cmd.name} has no option {key!r} (has {sorted(by_name)})")
    for d in defs:
        if d["name"] not in values:
            if strict and d.get("required"):
                raise ValueError(f"/{cmd.name}: required option {d['name']!r} missing")
            continue
        value = option_value(fake, d, values[d["name"]], channel_id, resolved, strict and focused is None, user_id)
        opt: dict[str, Any] = {"name": d["name"], "type": d["type"], "value": value}
        if d["name"] == focused:
            opt["focused"] = True
            opt["value"] = str(values[d["name"]])
        built.append(opt)
    for wrapper in reversed(wrappers):
        wrapper["options"] = built
        built = [wrapper]
    return built


def option_value(
    fake: FakeDiscord,
    d: dict[str, Any],
    value: Any,
    channel_id: int,
    resolved: dict[str, dict[str, Any]],
    strict: bool,
    user_id: int | None = None,
) -> Any:
    world, t = fake.world, d["type"]
    if t == ATTACHMENT:
        att = value if isinstance(value, Attachment) else fake.upload(value, channel_id)
        resolved.setdefault("attachments", {})[str(att.id)] = payloads.attachment_json(att)
        return str(att.id)
    if t in (USER, MENTIONABLE) and int(value) in world.users:
        user_id = int(value)
        resolved.setdefault("users", {})[str(user_id)] = payloads.user_json(world.users[user_id])
        member = world.members.get((world.channels[channel_id].guild_id, user_id))
        if member is not None:
            resolved.setdefault("members", {})[str(user_id)] = payloads.member_json(world, member, with_user=False)
        return str(user_id)
    if t in (ROLE, MENTIONABLE) and int(value) in world.roles:
        resolved.setdefault("roles", {})[str(value)] = payloads.role_json(world.roles[int(value)])
        return str(value)
    if t == CHANNEL:
        channel = world.channels[int(value)]
        # Discord sends a resolved channel with the invoking member's permissions in it.
        perms = fake.permissions_in(channel, user_id) if user_id is not None else 0
        entry = {**payloads.channel_json(channel), "permissions": payloads.permissions_str(perms)}
        resolved.setdefault("channels", {})[str(channel.id)] = entry
        return str(channel.id)
    if strict:
        check_scalar(d, value)
    return value


def check_scalar(d: dict[str, Any], value: Any) -> None:
    """What the Discord client enforces before sending: types, choices, ranges, lengths."""
    t, name = d["type"], d["name"]
    kinds: dict[int, type | tuple[type, ...]] = {STRING: str, INTEGER: int, BOOLEAN: bool, NUMBER: (int, float)}
    if t in kinds and (not isinstance(value, kinds[t]) or (t != BOOLEAN and isinstance(value, bool))):
        raise TypeError(f"option {name!r} wants type {t}, got {value!r}")
    if d.get("choices") and value not in [c["value"] for c in d["choices"]]:
        raise ValueError(f"option {name!r}: {value!r} is not one of the choices")
    too_low = "min_value" in d and value < d["min_value"]
    if t in (INTEGER, NUMBER) and (too_low or ("max_value" in d and value > d["max_value"])):
        raise ValueError(f"option {name!r}: {value} outside [{d.get('min_value')}, {d.get('max_value')}]")
    if t == STRING and not d.get("min_length", 0) <= len(value) <= d.get("max_length", 6000):
        raise ValueError(f"option {name!r}: length {len(value)} out of bounds")
