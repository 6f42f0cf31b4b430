"""The review API: the queue (filtered), claim, approve (optionally edited), reject, hand over, give back,
the learning figures, the audit log, and message status. The desk's page acts through the same actions."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from aiohttp import web
from aiohttp.typedefs import Handler

from bot.keys import METRICS, SETTINGS, STORE
from bot.models import ReviewCase
from bot.review import actions
from bot.review.actions import ActionError
from bot.review.auth import REVIEWER, require_admin
from bot.review.openapi import OPENAPI
from bot.review.queue import Filters, find, seconds_left


def _error(status: int, reason: str, detail: str) -> web.Response:
    return web.json_response({"error": reason, "detail": detail}, status=status)


def case_json(case: ReviewCase, now: datetime, holder: str | None = None) -> dict[str, object]:
    """The case, with the seconds left to its deadline, whether it is overdue, and who holds it."""
    data: dict[str, object] = json.loads(case.model_dump_json())
    left = seconds_left(case, now)
    if left is not None:
        data |= {"seconds_left": round(left), "overdue": left < 0}
    return data | {"claimed_by": holder}


async def _body(request: web.Request) -> dict[str, object]:
    """The optional JSON object of a POST; empty when there is no body."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ActionError(400, "malformed_json", str(error)) from error
    if not isinstance(data, dict):
        raise ActionError(400, "invalid_body", "expected a JSON object")
    return data


@web.middleware
async def action_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ActionError as error:
        return _error(error.status, error.reason, error.detail)


async def list_reviews(request: web.Request) -> web.Response:
    """GET /api/reviews[?channel=&priority=&intent=&state=]: the queue, most urgent and soonest due first."""
    try:
        filters = Filters.parse(request.query)
    except ValueError as error:
        return _error(400, "invalid_filter", str(error))
    now = datetime.now(UTC)
    found = await find(request.app[STORE], filters)
    return web.json_response({"cases": [case_json(case, now, holder) for case, holder in found]})


async def claim(request: web.Request) -> web.Response:
    """POST /api/reviews/{case_id}/claim: take the case for CLAIM_S seconds; 409 if someone else has it."""
    case_id = request.match_info["case_id"]
    holder = await actions.claim(request.app[STORE], case_id, request[REVIEWER])
    return web.json_response({"case_id": case_id, "claimed_by": holder, "seconds": actions.CLAIM_S})


async def approve(request: web.Request) -> web.Response:
    """POST /api/reviews/{case_id}/approve [{"text": "..."}]: send the draft, or the reviewer's own text."""
    body = await _body(request)
    app = request.app
    case = await actions.approve(
        app[STORE], app[METRICS], request.match_info["case_id"], request[REVIEWER], body.get("text")
    )
    return web.json_response(case_json(case, datetime.now(UTC)))


async def reject(request: web.Request) -> web.Response:
    """POST /api/reviews/{case_id}/reject [{"reason": "..."}]: close the case; nothing is sent."""
    body = await _body(request)
    app = request.app
    case = await actions.reject(
        app[STORE], app[METRICS], request.match_info["case_id"], request[REVIEWER], body.get("reason")
    )
    return web.json_response(case_json(case, datetime.now(UTC)))


async def hand_over(request: web.Request) -> web.Response:
    """POST /api/reviews/{case_id}/handover [{"reason": "..."}]: people take the conversation; the bot stays out."""
    body = await _body(request)
    app = request.app
    seconds = round(app[SETTINGS].handover_hours * 3600)
    case = await actions.hand_over(
        app[STORE], app[METRICS], request.match_info["case_id"], request[REVIEWER], body.get("reason"), seconds
    )
    return web.json_response(case_json(case, datetime.now(UTC)))


async def release(request: web.Request) -> web.Response:
    """POST /api/conversations/{channel}/{conversation_id}/release: give a handed-over conversation back."""
    channel, conversation = request.match_info["channel"], request.match_info["conversation_id"]
    if not await request.app[STORE].release(channel, conversation, request[REVIEWER]):
        return _error(404, "not_found", "that conversation is not handed over")
    return web.json_response({"channel": channel, "conversation_id": conversation, "handed_to": None})


async def learning(request: web.Request) -> web.Response:
    """GET /api/learning: per intent, how reviewed drafts fared, and shadow-mode agreement."""
    return web.json_response({"intents": await request.app[STORE].learning()})


async def audit(request: web.Request) -> web.Response:
    """GET /api/audit[?limit=N]: every reviewer action, newest first (admins only)."""
    require_admin(request)
    try:
        limit = int(request.query.get("limit", "100"))
    except ValueError:
        return _error(400, "invalid_limit", "limit must be a whole number")
    if not 1 <= limit <= 1000:
        return _error(400, "invalid_limit", "limit must be between 1 and 1000")
    return web.json_response({"actions": await request.app[STORE].audit_log(limit)})


async def openapi(request: web.Request) -> web.Response:
    """GET /api/openapi.json: this API, described (no token needed)."""
    return web.json_response(OPENAPI)


async def message_status(request: web.Request) -> web.Response:
    """GET /api/messages/{channel}/{message_id}: where the message is now."""
    state = await request.app[STORE].message_state(request.match_info["channel"], request.match_info["message_id"])
    if state is None:
        return _error(404, "not_found", "no such message")
    return web.json_response(json.loads(state.model_dump_json()))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/reviews", list_reviews)
    app.router.add_post("/api/reviews/{case_id}/approve", approve)
    app.router.add_post("/api/reviews/{case_id}/reject", reject)
    app.router.add_post("/api/reviews/{case_id}/claim", claim)
    app.router.add_post("/api/reviews/{case_id}/handover", hand_over)
    app.router.add_post("/api/conversations/{channel}/{conversation_id}/release", release)
    app.router.add_get("/api/learning", learning)
    app.router.add_get("/api/messages/{channel}/{message_id:.+}", message_status)
    app.router.add_get("/api/audit", audit)
    app.router.add_get("/api/openapi.json", openapi)
