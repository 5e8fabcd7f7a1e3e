"""Messages as Discord makes them: from a JSON payload plus uploaded files, with Discord's checks and mentions.

Shared by channel routes, webhook routes and interaction callbacks, so that every way of posting applies the
same rules: 2,000 characters, no empty message, unique custom ids, per-file upload limit, attachments matched to
`files[n]` parts, and who would actually be pinged given `allowed_mentions`.
"""

from __future__ import annotations

import io
import mimetypes
import re
from typing import TYPE_CHECKING, Any

from tests.support import payloads
from tests.support.rest import ApiError, form_error
from tests.support.state import (
    EPHEMERAL,
    IS_COMPONENTS_V2,
    LOADING,
    SUPPRESS_EMBEDS,
    SUPPRESS_NOTIFICATIONS,
    Attachment,
    FilePart,
    Message,
)

if TYPE_CHECKING:
    from tests.support.core import FakeCore
    from tests.support.state import World

CONTENT_LIMIT = 2000
SETTABLE_FLAGS = SUPPRESS_EMBEDS | SUPPRESS_NOTIFICATIONS | IS_COMPONENTS_V2
USER_MENTION = re.compile(r"<@!?(\d+)>")
ROLE_MENTION = re.compile(r"<@&(\d+)>")

_MAGIC = [
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
]


def sniff_type(data: bytes, filename: str) -> str | None:
    """Discord works out the type from the bytes (every part arrives as application/octet-stream)."""
    for magic, ctype in _MAGIC:
        if data.startswith(magic):
            return ctype
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return mimetypes.guess_type(filename)[0]


def image_size(data: bytes, ctype: str | None) -> tuple[int, int] | None:
    if not ctype or not ctype.startswith("image/"):
        return None
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as img:
            return img.size
    except Exception:  # not decodable, or Pillow missing: Discord simply leaves width/height out
        return None


def make_attachment(
    core: FakeCore, channel_id: int, filename: str, data: bytes, description: str | None = None
) -> Attachment:
    world = core.world
    ctype = sniff_type(data, filename)
    size = image_size(data, ctype)
    att = Attachment(world.ids.next(), channel_id, filename, data, ctype, description)
    if size:
        att.width, att.height = size
    att.url = f"{core.base_url}/attachments/{channel_id}/{att.id}/{filename}"
    world.attachments[att.id] = att
    return att


def _check_components(components: list[dict[str, Any]]) -> None:
    seen: set[str] = set()

    def walk(items: list[dict[str, Any]]) -> None:
        for c in items:
            cid = c.get("custom_id")
            if cid is not None:
                if cid in seen:
                    raise form_error(
                        "components", [f"custom_id {cid!r} is used twice (COMPONENT_CUSTOM_ID_DUPLICATED)"]
                    )
                seen.add(cid)
            walk(c.get("components") or [])
            if isinstance(c.get("accessory"), dict):
                walk([c["accessory"]])

    walk(components)


def check_payload(payload: dict[str, Any], files: list[FilePart], limit: int, *, creating: bool) -> None:
    """Discord's checks beyond the OpenAPI schema."""
    content = payload.get("content") or ""
    if len(content) > CONTENT_LIMIT:
        raise form_error("content", [f"content: Must be {CONTENT_LIMIT} or fewer in length ({len(content)})."])
    _check_components(payload.get("components") or [])
    flags = payload.get("flags") or 0
    if flags & IS_COMPONENTS_V2 and (content or payload.get("embeds")):
        raise form_error("flags", ["IS_COMPONENTS_V2 messages cannot have content or embeds"])
    for f in files:
        if not re.fullmatch(r"files\[\d+\]", f.field):
            raise form_error("files", [f"file part named {f.field!r}; Discord expects files[n]"])
        if len(f.data) > limit:
            raise ApiError(413, 40005, f"Request entity too large ({f.filename}: {len(f.data)} > {limit} bytes)")
    if creating and not (
        content
        or payload.get("embeds")
        or payload.get("components")
        or files
        or payload.get("sticker_ids")
        or payload.get("poll")
    ):
        raise ApiError(400, 50006, "Cannot send an empty message")
    mentions = payload.get("allowed_mentions") or {}
    for kind in ("users", "roles"):
        if kind in (mentions.get("parse") or []) and mentions.get(kind):
            raise form_error("allowed_mentions", [f"parse:[{kind}] and {kind} are mutually exclusive"])


def build_attachments(
    core: FakeCore, channel_id: int, payload: dict[str, Any], files: list[FilePart], existing: list[Attachment]
) -> list[Attachment]:
    """`attachments[]` keeps old ones by id and names new ones by file index; without it, files are appended."""
    by_index = {int(f.field[6:-1]): f for f in files}
    kept = {a.id: a for a in existing}
    if "attachments" not in payload or payload["attachments"] is None:
        return list(existing) + [make_attachment(core, channel_id, f.filename, f.data) for f in files]
    result: list[Attachment] = []
    used: set[int] = set()
    for item in payload["attachments"]:
        aid = int(item["id"])
        if aid in kept:
            result.append(kept[aid])
        elif aid in by_index:
            part = by_index[aid]
            name = item.get("filename") or part.filename
            result.append(make_attachment(core, channel_id, name, part.data, item.get("description")))
            used.add(aid)
        else:
            raise form_error("attachments", [f"attachments: id {aid} is neither an upload nor a kept attachment"])
    for index, part in by_index.items():
        if index not in used:
            result.append(make_attachment(core, channel_id, part.filename, part.data))
    return result


def compute_mentions(world: World, msg: Message) -> None:
    """Who this message pings, from its content and `allowed_mentions` (author permissions not applied:
    a fake that errs towards "pinged" catches a missing allowed_mentions even when the bot lacks the right)."""
    allowed = msg.allowed_mentions
    parse = {"users", "roles", "everyone"} if allowed is None else set(allowed.get("parse") or [])
    users = [int(u) for u in USER_MENTION.findall(msg.content)]
    roles = [int(r) for r in ROLE_MENTION.findall(msg.content)]
    listed_users = {int(x) for x in (allowed or {}).get("users") or []}
    listed_roles = {int(x) for x in (allowed or {}).get("roles") or []}
    pinged_users = [u for u in users if u in world.users and ("users" in parse or u in listed_users)]
    pinged_roles = [r for r in roles if r in world.roles and ("roles" in parse or r in listed_roles)]
    ref = msg.message_reference and world.messages.get(int(msg.message_reference.get("message_id") or 0))
    if ref and (allowed is None or allowed.get("replied_user")) and ref.author_id not in pinged_users:
        pinged_users.append(ref.author_id)
    msg.mention_user_ids = list(dict.fromkeys(pinged_users))
    msg.mention_role_ids = list(dict.fromkeys(pinged_roles))
    msg.mention_everyone = "everyone" in parse and ("@everyone" in msg.content or "@here" in msg.content)


def apply_fields(core: FakeCore, msg: Message, payload: dict[str, Any], files: list[FilePart]) -> None:
    if "content" in payload:
        msg.content = payload["content"] or ""
    if "embeds" in payload:
        msg.embeds = payload["embeds"] or []
    if "components" in payload:
        msg.components = payload["components"] or []
    if "allowed_mentions" in payload:
        msg.allowed_mentions = payload["allowed_mentions"]
    if "flags" in payload and payload["flags"] is not None:
        msg.flags = (msg.flags & (EPHEMERAL | LOADING)) | (payload["flags"] & SETTABLE_FLAGS)
    msg.attachments = build_attachments(core, msg.channel_id, payload, files, msg.attachments)
    compute_mentions(core.world, msg)


async def create_message(
    core: FakeCore,
    channel_id: int,
    author_id: int,
    payload: dict[str, Any],
    files: list[FilePart],
    *,
    limit: int,
    webhook_id: int | None = None,
    interaction_id: int | None = None,
    ephemeral: bool = False,
    loading: bool = False,
    type_: int = 0,
) -> Message:
    world = core.world
    if not loading:
        check_payload(payload, files, limit, creating=True)
    channel = world.channels[channel_id]
    msg = Message(
        world.ids.next(),
        channel_id,
        channel.guild_id,
        author_id,
        world.clock.now(),
        webhook_id=webhook_id,
        interaction_id=interaction_id,
        type=type_,
        tts=bool(payload.get("tts")),
    )
    ref = payload.get("message_reference")
    if ref:
        target = world.messages.get(int(ref.get("message_id") or 0))
        if target is None or target.deleted or target.channel_id != channel_id:
            if ref.get("fail_if_not_exists", True):
                raise form_error("message_reference", ["message_reference: Unknown message"])
        else:
            msg.message_reference = {
                "type": 0,
                "message_id": target.id,
                "channel_id": channel_id,
                "guild_id": channel.guild_id,
            }
            msg.type = 19
    apply_fields(core, msg, payload, files)
    msg.flags |= (EPHEMERAL if ephemeral else 0) | (LOADING if loading else 0)
    world.messages[msg.id] = msg
    if not msg.ephemeral:
        await core.gateway.dispatch("MESSAGE_CREATE", payloads.message_json(world, msg), guild_id=msg.guild_id)
    world.changed()
    return msg


async def edit_message(
    core: FakeCore, msg: Message, payload: dict[str, Any], files: list[FilePart], *, limit: int
) -> Message:
    check_payload(payload, files, limit, creating=False)
    msg.edits.append(msg.snapshot())
    apply_fields(core, msg, payload, files)
    msg.flags &= ~LOADING
    msg.edited_at = core.world.clock.now()
    if not msg.ephemeral:
        await core.gateway.dispatch("MESSAGE_UPDATE", payloads.message_json(core.world, msg), guild_id=msg.guild_id)
    core.world.changed()
    return msg


async def delete_message(core: FakeCore, msg: Message) -> None:
    msg.deleted = True
    if not msg.ephemeral:
        data = {"id": str(msg.id), "channel_id": str(msg.channel_id)}
        if msg.guild_id is not None:
            data["guild_id"] = str(msg.guild_id)
        await core.gateway.dispatch("MESSAGE_DELETE", data, guild_id=msg.guild_id)
    core.world.changed()
