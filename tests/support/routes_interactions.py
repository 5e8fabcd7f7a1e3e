"""Interaction callbacks and the interaction webhook (`@original`, followups), with Discord's timing rules.

- A callback must come within 3 s of the interaction (else 404 10062) and only once (else 400 40060).
- The token in the path lives 15 minutes (after that 401 50027), and followups need an acknowledged interaction.
- After a deferred reply ("thinking"), the first followup replaces the loading message, as Discord does.
Times come from the fake's injectable clock, so a test expires tokens with `advance_clock(15 * 60)`.
"""

from __future__ import annotations

from typing import Any

from tests.support import messages as M
from tests.support import payloads
from tests.support.rest import ApiError, Ctx, Reply, form_error, route
from tests.support.state import (
    APPLICATION_COMMAND,
    AUTOCOMPLETE,
    EPHEMERAL,
    MESSAGE_COMPONENT,
    MODAL_SUBMIT,
    Interaction,
    Message,
)

ACK_WINDOW = 3.0
TOKEN_LIFETIME = 15 * 60.0

PONG, CHANNEL_MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, UPDATE_MESSAGE, AUTOCOMPLETE_RESULT, MODAL = (
    1,
    4,
    5,
    6,
    7,
    8,
    9,
)

#: Which callback types Discord takes for each interaction type.
ALLOWED_RESPONSES = {
    APPLICATION_COMMAND: {CHANNEL_MESSAGE, DEFERRED_MESSAGE, MODAL},
    MESSAGE_COMPONENT: {CHANNEL_MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, UPDATE_MESSAGE, MODAL},
    AUTOCOMPLETE: {AUTOCOMPLETE_RESULT},
    MODAL_SUBMIT: {CHANNEL_MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, UPDATE_MESSAGE},
}

INVALID_TOKEN = ApiError(401, 50027, "Invalid Webhook Token")
UNKNOWN_MESSAGE = ApiError(404, 10008, "Unknown Message")


def _limit(ctx: Ctx, inter: Interaction) -> int:
    return ctx.core.guild_of(ctx.world.channels[inter.channel_id]).upload_limit


@route("POST", "/interactions/{interaction_id}/{interaction_token}/callback", auth="token")
async def callback(ctx: Ctx) -> Reply:
    world = ctx.world
    inter = world.interactions.get(ctx.snowflake("interaction_id"))
    if inter is None:
        raise ApiError(404, 10062, "Unknown interaction")
    if inter.token != ctx.params["interaction_token"]:
        raise INVALID_TOKEN
    if inter.acked:
        raise ApiError(400, 40060, "Interaction has already been acknowledged.")
    if world.clock.now() - inter.created_at > ACK_WINDOW:
        raise ApiError(404, 10062, "Unknown interaction")
    body = ctx.json or {}
    rtype = body.get("type")
    data: dict[str, Any] = body.get("data") or {}
    allowed = ALLOWED_RESPONSES.get(inter.type, set())
    if rtype in (DEFERRED_UPDATE, UPDATE_MESSAGE) and inter.message_id is None:
        allowed = allowed - {DEFERRED_UPDATE, UPDATE_MESSAGE}
    if rtype not in allowed:
        world.error(f"callback type {rtype} is not valid for interaction type {inter.type}")
        raise form_error("type", [f"type: response type {rtype} is not valid for interaction type {inter.type}"])
    inter.acked_at, inter.ack_type, inter.ack_payload = world.clock.now(), rtype, body
    try:
        msg = await _respond(ctx, inter, rtype, data)
    except Exception:
        inter.acked_at = inter.ack_type = inter.ack_payload = None  # a rejected callback acknowledges nothing
        raise
    world.changed()
    if ctx.query.get("with_response") not in ("1", "true", "True"):
        return 204, None
    response: dict[str, Any] = {"interaction": {"id": str(inter.id), "type": inter.type}}
    resource: dict[str, Any] = {"type": rtype}
    if msg is not None:
        response["interaction"].update(
            response_message_id=str(msg.id),
            response_message_loading=msg.loading,
            response_message_ephemeral=msg.ephemeral,
        )
        if rtype in (CHANNEL_MESSAGE, DEFERRED_MESSAGE, UPDATE_MESSAGE):
            resource["message"] = payloads.message_json(world, msg)
    response["resource"] = resource
    return 200, response


async def _respond(ctx: Ctx, inter: Interaction, rtype: int, data: dict[str, Any]) -> Message | None:
    world, core = ctx.world, ctx.core
    ephemeral = bool((data.get("flags") or 0) & EPHEMERAL)
    type_ = 20 if inter.type == APPLICATION_COMMAND else 0
    if rtype == CHANNEL_MESSAGE:
        msg = await M.create_message(
            core,
            inter.channel_id,
            world.bot.id,
            data,
            ctx.files,
            limit=_limit(ctx, inter),
            type_=type_,
            webhook_id=world.application_id,
            interaction_id=inter.id,
            ephemeral=ephemeral,
        )
        inter.original_message_id = msg.id
        return msg
    if rtype == DEFERRED_MESSAGE:
        msg = await M.create_message(
            core,
            inter.channel_id,
            world.bot.id,
            {},
            [],
            limit=0,
            loading=True,
            type_=type_,
            webhook_id=world.application_id,
            interaction_id=inter.id,
            ephemeral=ephemeral,
        )
        inter.original_message_id = msg.id
        return msg
    if rtype in (DEFERRED_UPDATE, UPDATE_MESSAGE):
        assert inter.message_id is not None
        inter.original_message_id = inter.message_id
        msg = world.messages[inter.message_id]
        if rtype == UPDATE_MESSAGE:
            await M.edit_message(core, msg, data, ctx.files, limit=_limit(ctx, inter))
        return msg
    if rtype == AUTOCOMPLETE_RESULT:
        inter.choices = list(data.get("choices") or [])
        return None
    inter.modal = data
    return None


# -- the interaction webhook -----------------------------------------------------------------------------------


def _interaction(ctx: Ctx) -> Interaction:
    world = ctx.world
    if ctx.snowflake("webhook_id") != world.application_id:
        raise ApiError(404, 10015, "Unknown Webhook")
    inter_id = world.tokens.get(ctx.params["webhook_token"])
    if inter_id is None:
        raise INVALID_TOKEN
    inter = world.interactions[inter_id]
    if world.clock.now() - inter.created_at > TOKEN_LIFETIME:
        raise INVALID_TOKEN
    if not inter.acked:
        raise ApiError(404, 10015, "Unknown Webhook")
    return inter


def _owned_message(ctx: Ctx, inter: Interaction) -> Message:
    raw = ctx.params.get("message_id", "@original")
    mid = inter.original_message_id if raw == "@original" else ctx.snowflake("message_id")
    if mid is None or (mid != inter.original_message_id and mid not in inter.followup_ids):
        raise UNKNOWN_MESSAGE
    msg = ctx.world.messages.get(mid)
    if msg is None or msg.deleted:
        raise UNKNOWN_MESSAGE
    return msg


@route("POST", "/webhooks/{webhook_id}/{webhook_token}", auth="token")
async def followup(ctx: Ctx) -> Reply:
    inter = _interaction(ctx)
    world = ctx.world
    payload = ctx.json or {}
    original = world.messages.get(inter.original_message_id or 0)
    if original is not None and not original.deleted and original.loading and not inter.followup_ids:
        await M.edit_message(ctx.core, original, payload, ctx.files, limit=_limit(ctx, inter))
        msg = original
    else:
        msg = await M.create_message(
            ctx.core,
            inter.channel_id,
            world.bot.id,
            payload,
            ctx.files,
            limit=_limit(ctx, inter),
            webhook_id=world.application_id,
            interaction_id=inter.id,
            ephemeral=bool((payload.get("flags") or 0) & EPHEMERAL),
        )
    inter.followup_ids.append(msg.id)
    world.changed()
    if ctx.query.get("wait") not in ("1", "true", "True"):
        return 204, None
    return 200, payloads.message_json(world, msg)


@route("GET", "/webhooks/{webhook_id}/{webhook_token}/messages/@original", auth="token")
@route("GET", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}", auth="token")
async def get_webhook_message(ctx: Ctx) -> Reply:
    return 200, payloads.message_json(ctx.world, _owned_message(ctx, _interaction(ctx)))


@route("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/@original", auth="token")
@route("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}", auth="token")
async def edit_webhook_message(ctx: Ctx) -> Reply:
    inter = _interaction(ctx)
    msg = _owned_message(ctx, inter)
    await M.edit_message(ctx.core, msg, ctx.json or {}, ctx.files, limit=_limit(ctx, inter))
    return 200, payloads.message_json(ctx.world, msg)


@route("DELETE", "/webhooks/{webhook_id}/{webhook_token}/messages/@original", auth="token")
@route("DELETE", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}", auth="token")
async def delete_webhook_message(ctx: Ctx) -> Reply:
    await M.delete_message(ctx.core, _owned_message(ctx, _interaction(ctx)))
    return 204, None
