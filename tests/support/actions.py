"""What members do: run slash commands, type into autocomplete, press buttons, pick from selects, submit modals,
react, and post messages. Each builds the INTERACTION_CREATE (or message/reaction event) Discord would send.

By default the member's Discord client rules apply (`strict=True`): only synced commands, required options
present, declared choices and ranges respected, the command's `default_member_permissions` met, buttons that
exist and are enabled. Pass `strict=False` to send what a real client never would.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tests.support import messages as M
from tests.support import payloads
from tests.support import permissions as P
from tests.support.options import build_options
from tests.support.routes_channels import add_reaction, remove_reaction
from tests.support.state import (
    APPLICATION_COMMAND,
    AUTOCOMPLETE,
    MESSAGE_COMPONENT,
    MODAL_SUBMIT,
    Attachment,
    Command,
    FilePart,
    Interaction,
    Message,
)

if TYPE_CHECKING:
    from tests.support.core import FakeCore as _Base
else:
    _Base = object


@dataclass
class Upload:
    """A file a member attaches (to an attachment option or a message)."""

    filename: str
    data: bytes


UploadLike = Upload | tuple[str, bytes] | Attachment


class MemberActions(_Base):
    """Mixed into FakeDiscord; relies on FakeCore's world, gateway and permission helpers."""

    async def wait_for_bot(self, timeout: float = 10.0) -> None:  # provided by FakeDiscord
        raise NotImplementedError

    # -- interactions -----------------------------------------------------------------------------------------

    async def _interact(
        self, itype: int, channel_id: int, user_id: int, data: dict[str, Any], message: Message | None = None
    ) -> Interaction:
        await self.wait_for_bot()
        world = self.world
        channel = world.channels[channel_id]
        inter = Interaction(
            world.ids.next(),
            "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(48),
            itype,
            world.application_id,
            channel.guild_id,
            channel_id,
            user_id,
            data,
            world.clock.now(),
            message.id if message else None,
        )
        world.interactions[inter.id] = inter
        world.tokens[inter.token] = inter.id
        payload = self.interaction_json(inter, message)
        if await self.gateway.dispatch_one("INTERACTION_CREATE", payload, guild_id=channel.guild_id) is None:
            raise RuntimeError("no gateway session to receive the interaction")
        world.changed()
        return inter

    def interaction_json(self, inter: Interaction, message: Message | None = None) -> dict[str, Any]:
        world = self.world
        channel = world.channels[inter.channel_id]
        guild = world.guilds[channel.guild_id]
        perms = payloads.permissions_str(self.permissions_in(channel, inter.user_id))
        data: dict[str, Any] = {
            "id": str(inter.id),
            "application_id": str(inter.application_id),
            "type": inter.type,
            "token": inter.token,
            "version": 1,
            "guild_id": str(guild.id),
            "guild": {"id": str(guild.id), "locale": guild.locale, "features": []},
            "channel_id": str(channel.id),
            "channel": {**payloads.channel_json(channel), "permissions": perms},
            "member": {**payloads.member_json(world, world.member(guild.id, inter.user_id)), "permissions": perms},
            "app_permissions": payloads.permissions_str(self.permissions_in(channel, world.bot.id)),
            "locale": "en-US",
            "guild_locale": guild.locale,
            "entitlements": [],
            "entitlement_sku_ids": [],
            "authorizing_integration_owners": {"0": str(guild.id)},
            "context": 0,
            "attachment_size_limit": guild.upload_limit,
            "data": inter.data,
        }
        if message is not None:
            data["message"] = payloads.message_json(world, message)
        return data

    def find_command(self, name: str, guild_id: int, type_: int = 1) -> Command:
        """The command a member would see: guild-scoped first, then global."""
        found = [c for c in self.world.commands.values() if c.name == name and c.type == type_]
        for cmd in sorted(found, key=lambda c: c.guild_id is None):
            if cmd.guild_id in (guild_id, None):
                return cmd
        raise LookupError(
            f"no command {name!r} synced for guild {guild_id} (synced: "
            f"{[(c.name, c.guild_id) for c in self.world.commands.values()]})"
        )

    def _check_can_use(self, cmd: Command, channel_id: int, user_id: int) -> None:
        channel = self.world.channels[channel_id]
        perms = self.permissions_in(channel, user_id)
        if not perms & P.VIEW_CHANNEL or not perms & P.USE_APPLICATION_COMMANDS:
            raise PermissionError(f"user {user_id} cannot use commands in channel {channel_id}")
        needed = cmd.payload.get("default_member_permissions")
        if needed is not None and int(needed) & perms != int(needed):
            raise PermissionError(f"/{cmd.name} is hidden from user {user_id} (default_member_permissions {needed})")

    async def slash(
        self,
        name: str,
        *,
        channel_id: int,
        user_id: int,
        options: dict[str, Any] | None = None,
        subcommand: str | None = None,
        strict: bool = True,
    ) -> Interaction:
        """Run `/name` (or `/name group sub` via `subcommand="group sub"`) with option values by name."""
        guild_id = self.world.channels[channel_id].guild_id
        cmd = self.find_command(name, guild_id)
        if strict:
            self._check_can_use(cmd, channel_id, user_id)
        resolved: dict[str, dict[str, Any]] = {}
        built = build_options(
            self, cmd, subcommand, options or {}, channel_id, resolved, strict=strict, focused=None, user_id=user_id
        )
        data: dict[str, Any] = {"id": str(cmd.id), "name": cmd.name, "type": 1, "options": built}
        if cmd.guild_id is not None:
            data["guild_id"] = str(cmd.guild_id)
        if resolved:
            data["resolved"] = resolved
        return await self._interact(APPLICATION_COMMAND, channel_id, user_id, data)

    async def autocomplete(
        self,
        name: str,
        *,
        channel_id: int,
        user_id: int,
        focused: str,
        options: dict[str, Any] | None = None,
        subcommand: str | None = None,
        timeout: float = 3.0,
    ) -> list[dict[str, Any]]:
        """Type into option `focused` (its partial value in `options`) and return the choices the app offered."""
        guild_id = self.world.channels[channel_id].guild_id
        cmd = self.find_command(name, guild_id)
        values = dict(options or {})
        values.setdefault(focused, "")
        built = build_options(self, cmd, subcommand, values, channel_id, {}, strict=False, focused=focused)
        data: dict[str, Any] = {"id": str(cmd.id), "name": cmd.name, "type": 1, "options": built}
        if cmd.guild_id is not None:
            data["guild_id"] = str(cmd.guild_id)
        inter = await self._interact(AUTOCOMPLETE, channel_id, user_id, data)
        await self.wait_for(lambda: inter.choices is not None, timeout=timeout, what="autocomplete choices")  # type: ignore[attr-defined]
        return inter.choices or []

    def upload(self, item: UploadLike, channel_id: int) -> Attachment:
        """Put a member's file on the fake CDN (for attachment options and messages)."""
        if isinstance(item, Attachment):
            return item
        return M.make_attachment(self, channel_id, *_file_of(item))  # type: ignore[arg-type]

    async def click(self, message_id: int, custom_id: str, *, user_id: int, strict: bool = True) -> Interaction:
        """Press a button on a message."""
        msg, comp = self._component(message_id, custom_id, user_id, strict)
        if strict and comp.get("type") != 2:
            raise LookupError(f"{custom_id!r} is not a button")
        data = {"custom_id": custom_id, "component_type": comp.get("type", 2)}
        return await self._interact(MESSAGE_COMPONENT, msg.channel_id, user_id, data, msg)

    async def select(
        self, message_id: int, custom_id: str, values: Iterable[str], *, user_id: int, strict: bool = True
    ) -> Interaction:
        """Pick `values` in a select menu on a message."""
        msg, comp = self._component(message_id, custom_id, user_id, strict)
        chosen = [str(v) for v in values]
        if strict and comp.get("type") == 3:
            offered = {o["value"] for o in comp.get("options") or []}
            if not set(chosen) <= offered:
                raise ValueError(f"{chosen} not among the options {sorted(offered)}")
            if not comp.get("min_values", 1) <= len(chosen) <= comp.get("max_values", 1):
                raise ValueError(f"{len(chosen)} values outside min/max of {custom_id!r}")
        data = {"custom_id": custom_id, "component_type": comp.get("type", 3), "values": chosen}
        return await self._interact(MESSAGE_COMPONENT, msg.channel_id, user_id, data, msg)

    def _component(self, message_id: int, custom_id: str, user_id: int, strict: bool) -> tuple[Message, dict]:
        msg = self.world.messages[message_id]
        if msg.deleted:
            raise LookupError(f"message {message_id} was deleted")
        owner = self.world.interactions[msg.interaction_id].user_id if msg.interaction_id else None
        if msg.ephemeral and owner not in (None, user_id):
            raise PermissionError("an ephemeral message is visible to its requester only")
        if strict and not self.permissions_in(self.world.channels[msg.channel_id], user_id) & P.VIEW_CHANNEL:
            raise PermissionError(f"user {user_id} cannot see channel {msg.channel_id}")
        found = _find_component(msg.components, custom_id)
        if found is None:
            if strict:
                raise LookupError(f"no component {custom_id!r} on message {message_id}: {msg.custom_ids()}")
            found = {"type": 2, "custom_id": custom_id}
        if strict and found.get("disabled"):
            raise PermissionError(f"component {custom_id!r} is disabled")
        return msg, found

    async def submit_modal(
        self, opened_by: int | Interaction, values: dict[str, Any], *, strict: bool = True
    ) -> Interaction:
        """Fill and submit the modal an interaction answered with (callback type 9); `values` by custom_id."""
        source = self.world.interactions[opened_by.id if isinstance(opened_by, Interaction) else opened_by]
        modal = source.modal
        if modal is None:
            raise LookupError(f"interaction {source.id} did not open a modal")
        unknown = set(values) - {c.get("custom_id") for c in _walk_inputs(modal.get("components") or [])}
        if unknown:
            raise LookupError(f"modal {modal.get('custom_id')!r} has no inputs {sorted(unknown)}")

        def fill(comp: dict[str, Any]) -> dict[str, Any] | None:
            if comp.get("type") == 1:
                return {"type": 1, "components": [x for x in map(fill, comp.get("components") or []) if x]}
            if comp.get("type") == 18:
                inner = fill(comp["component"])
                return {"type": 18, "component": inner} if inner else None
            cid = comp.get("custom_id")
            if comp.get("type") == 4:
                value = str(values.get(str(cid), comp.get("value") or ""))
                if strict:
                    _check_text_input(comp, value)
                return {"type": 4, "custom_id": cid, "value": value}
            if cid is not None:
                return {"type": comp["type"], "custom_id": cid, "values": [str(v) for v in values.get(cid, [])]}
            return None

        data = {
            "custom_id": modal.get("custom_id"),
            "components": [x for x in map(fill, modal.get("components") or []) if x],
        }
        message = self.world.messages.get(source.message_id or 0)
        return await self._interact(MODAL_SUBMIT, source.channel_id, source.user_id, data, message)

    # -- reactions and messages -------------------------------------------------------------------------------

    def _reactable(self, message_id: int, user_id: int) -> Message:
        msg = self.world.messages[message_id]
        if msg.deleted or msg.ephemeral:
            raise LookupError(f"message {message_id} cannot be reacted to")
        perms = self.permissions_in(self.world.channels[msg.channel_id], user_id)
        if perms & (P.VIEW_CHANNEL | P.READ_MESSAGE_HISTORY) != P.VIEW_CHANNEL | P.READ_MESSAGE_HISTORY:
            raise PermissionError(f"user {user_id} cannot read message {message_id}")
        return msg

    async def react(self, message_id: int, emoji: str, *, user_id: int) -> None:
        """A member adds a (unicode) reaction; MESSAGE_REACTION_ADD goes out if the app has the intent."""
        msg = self._reactable(message_id, user_id)
        may_add = self.permissions_in(self.world.channels[msg.channel_id], user_id) & P.ADD_REACTIONS
        if not msg.reactions.get(emoji) and not may_add:
            raise PermissionError(f"user {user_id} may not add new reactions")
        await add_reaction(self, msg, emoji, user_id)

    async def unreact(self, message_id: int, emoji: str, *, user_id: int) -> None:
        await remove_reaction(self, self._reactable(message_id, user_id), emoji, user_id)

    async def post_message(
        self,
        channel_id: int,
        user_id: int,
        content: str = "",
        *,
        attachments: Iterable[UploadLike] = (),
        reply_to: int | None = None,
    ) -> Message:
        """A member posts in a channel (MESSAGE_CREATE goes out, content visible only with the intent)."""
        channel = self.world.channels[channel_id]
        perms = self.permissions_in(channel, user_id)
        items = list(attachments)
        if not perms & P.SEND_MESSAGES or (items and not perms & P.ATTACH_FILES):
            raise PermissionError(f"user {user_id} may not post that in channel {channel_id}")
        files = []
        for i, item in enumerate(items):
            name, data = _file_of(item)
            files.append(FilePart(f"files[{i}]", name, "application/octet-stream", data))
        payload: dict[str, Any] = {"content": content}
        if reply_to is not None:
            payload["message_reference"] = {"message_id": reply_to}
        return await M.create_message(
            self,
            channel_id,
            user_id,
            payload,
            files,  # type: ignore[arg-type]
            limit=self.guild_of(channel).upload_limit,
        )


def _file_of(item: UploadLike) -> tuple[str, bytes]:
    if isinstance(item, (Upload, Attachment)):
        return item.filename, item.data
    return item[0], item[1]


def _find_component(items: list[dict[str, Any]], custom_id: str) -> dict[str, Any] | None:
    for comp in items:
        if comp.get("custom_id") == custom_id:
            return comp
        children = list(comp.get("components") or [])
        if isinstance(comp.get("accessory"), dict):
            children.append(comp["accessory"])
        found = _find_component(children, custom_id)
        if found is not None:
            return found
    return None


def _walk_inputs(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for comp in items:
        if comp.get("type") == 18:
            out.extend(_walk_inputs([comp["component"]]))
        elif comp.get("type") == 1:
            out.extend(_walk_inputs(comp.get("components") or []))
        elif comp.get("custom_id") is not None:
            out.append(comp)
    return out


def _check_text_input(comp: dict[str, Any], value: str) -> None:
    if comp.get("required", True) and not value:
        raise ValueError(f"text input {comp.get('custom_id')!r} is required")
    if value and not comp.get("min_length", 0) <= len(value) <= comp.get("max_length", 4000):
        raise ValueError(f"text input {comp.get('custom_id')!r}: length {len(value)} out of bounds")
