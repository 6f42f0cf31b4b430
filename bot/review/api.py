"""The review API: the queue (filtered), claim, approve (optionally edited), reject, hand over, give back,
the learning figures, the audit log, the incident brake, and message status. The desk's page acts through the
same actions."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from aiohttp import web
from aiohttp.typedefs import Handler

from bot.keys import INCIDENTS, METRICS, POLICY, SETTINGS, STORE
from bot.models import ReviewCase
from bot.policy.incident import Incident, by_hand, topics
from bot.review import actions
from bot.review.actions import ActionError
from bot.review.auth import REVIEWER, require_admin
from bot.review.openapi import document
from bot.review.queue import Filters, find, seconds_left

logger = logging.getLogger(__name__)


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
    """ActionError as its JSON answer; so is aiohttp's own refusal (no such route, wrong method) of an API or
    webhook path, which would otherwise be plain text."""
    try:
        return await handler(request)
    except ActionError as error:
        return _error(error.status, error.reason, error.detail)
    except web.HTTPException as error:
        if error.status < 400 or not request.path.startswith(("/api/", "/webhooks/")):
            raise
        answer = _error(error.status, (error.reason or "error").lower().replace(" ", "_"), error.reason)
        if "Allow" in error.headers:
            answer.headers["Allow"] = error.headers["Allow"]
        return answer


async def list_reviews(request: web.Request) -> web.Response:
    """GET /api/reviews[?channel=&priority=&intent=&state=]: the queue, most urgent and soonest due first."""
    try:
        filters = Filters.parse(request.query)
    except ValueError as error:
        return _error(400, "invalid_filter", str(error))
    now = datetime.now(UTC)
    found = await find(request.config_dict[STORE], filters)
    return web.json_response({"cases": [case_json(case, now, holder) for case, holder in found]})


async def claim(request: web.Request) -> web.Response:
    """POST /api/reviews/{case_id}/claim: take the case for CLAIM_S seconds; 409 if someone else has it."""
    case_id = request.match_info["case_id"]
    holder = await actions.claim(request.config_dict[STORE], case_id, request[REVIEWER])
    return web.json_response({"case_id": case_id, "claimed_by": holder, "seconds": actions.CLAIM_S})


async def approve(request: web.Request) -> web.Response:
    """POST /api/reviews/{case_id}/approve [{"text": "..."}]: send the draft, or the reviewer's own text."""
    body = await _body(request)
    app = request.config_dict
    case = await actions.approve(
        app[STORE], app[METRICS], request.match_info["case_id"], request[REVIEWER], body.get("text")
    )
    return web.json_response(case_json(case, datetime.now(UTC)))


async def reject(request: web.Request) -> web.Response:
    """POST /api/reviews/{case_id}/reject [{"reason": "..."}]: close the case; nothing is sent."""
    body = await _body(request)
    app = request.config_dict
    case = await actions.reject(
        app[STORE], app[METRICS], request.match_info["case_id"], request[REVIEWER], body.get("reason")
    )
    return web.json_response(case_json(case, datetime.now(UTC)))


async def hand_over(request: web.Request) -> web.Response:
    """POST /api/reviews/{case_id}/handover [{"reason": "..."}]: people take the conversation; the bot stays out."""
    body = await _body(request)
    app = request.config_dict
    seconds = round(app[SETTINGS].handover_hours * 3600)
    case = await actions.hand_over(
        app[STORE], app[METRICS], request.match_info["case_id"], request[REVIEWER], body.get("reason"), seconds
    )
    return web.json_response(case_json(case, datetime.now(UTC)))


async def release(request: web.Request) -> web.Response:
    """POST /api/conversations/{channel}/{conversation_id}/release: give a handed-over conversation back."""
    channel, conversation = request.match_info["channel"], request.match_info["conversation_id"]
    if not await request.config_dict[STORE].release(channel, conversation, request[REVIEWER]):
        return _error(404, "not_found", "that conversation is not handed over")
    return web.json_response({"channel": channel, "conversation_id": conversation, "handed_to": None})


async def learning(request: web.Request) -> web.Response:
    """GET /api/learning: per intent, how reviewed drafts fared, and shadow-mode agreement."""
    return web.json_response({"intents": await request.config_dict[STORE].learning()})


async def audit(request: web.Request) -> web.Response:
    """GET /api/audit[?limit=N]: every reviewer action, newest first (admins only)."""
    require_admin(request)
    try:
        limit = int(request.query.get("limit", "100"))
    except ValueError:
        return _error(400, "invalid_limit", "limit must be a whole number")
    if not 1 <= limit <= 1000:
        return _error(400, "invalid_limit", "limit must be between 1 and 1000")
    return web.json_response({"actions": await request.config_dict[STORE].audit_log(limit)})


def incident_json(incident: Incident) -> dict[str, object]:
    data: dict[str, object] = json.loads(incident.model_dump_json())
    return data


async def incidents(request: web.Request) -> web.Response:
    """GET /api/incidents: the topics the incident brake holds now."""
    held = await request.config_dict[INCIDENTS].active()
    return web.json_response({"incidents": [incident_json(incident) for incident in held.values()]})


def _text_or_none(body: dict[str, object], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise ActionError(400, "invalid_incident", f"{name} must be a string")
    return value


async def pull_brake(request: web.Request) -> web.Response:
    """POST /api/incidents {"topic", "action", "holding", "reason"}: hold a topic (or change how), admins only."""
    require_admin(request)
    body = await _body(request)
    app = request.config_dict
    try:
        incident = by_hand(
            _text_or_none(body, "topic") or "",
            _text_or_none(body, "action") or "review",
            _text_or_none(body, "holding"),
            _text_or_none(body, "reason"),
            request[REVIEWER],
            datetime.now(UTC),
            topics(app[POLICY]),
        )
    except ValueError as error:
        return _error(400, "invalid_incident", str(error))
    before = await app[INCIDENTS].pull(incident)
    app[METRICS].incident_active.labels(incident.topic).set(1)
    fields = {"topic": incident.topic, "by": incident.by, "action": incident.action}
    logger.warning("incident changed by hand" if before else "incident raised by hand", extra=fields)
    return web.json_response(incident_json(incident), status=200 if before else 201)


async def clear_incident(request: web.Request) -> web.Response:
    """DELETE /api/incidents/{topic}: lift the incident on a topic, admins only."""
    require_admin(request)
    app, topic = request.config_dict, request.match_info["topic"]
    quiet_s = app[POLICY].decision.incident.window_minutes * 60
    cleared = await app[INCIDENTS].clear(topic, request[REVIEWER], quiet_s)
    if cleared is None:
        return _error(404, "not_found", f"no incident holds {topic!r}")
    app[METRICS].incident_active.labels(topic).set(0)
    logger.warning("incident cleared", extra={"topic": topic, "by": request[REVIEWER]})
    return web.json_response({"topic": topic, "cleared": incident_json(cleared)})


async def openapi(request: web.Request) -> web.Response:
    """GET /api/openapi.json: this API, described (no token needed)."""
    return web.json_response(document(topics(request.config_dict[POLICY])))


async def message_status(request: web.Request) -> web.Response:
    """GET /api/messages/{channel}/{message_id}: where the message is now."""
    channel, message_id = request.match_info["channel"], request.match_info["message_id"]
    state = await request.config_dict[STORE].message_state(channel, message_id)
    if state is None:
        return _error(404, "not_found", "no such message")
    return web.json_response(json.loads(state.model_dump_json()))


def add_routes(app: web.Application) -> None:
    """The API's routes, on the sub-application mounted at /api."""
    app.router.add_get("/reviews", list_reviews)
    app.router.add_post("/reviews/{case_id}/approve", approve)
    app.router.add_post("/reviews/{case_id}/reject", reject)
    app.router.add_post("/reviews/{case_id}/claim", claim)
    app.router.add_post("/reviews/{case_id}/handover", hand_over)
    app.router.add_post("/conversations/{channel}/{conversation_id}/release", release)
    app.router.add_get("/learning", learning)
    app.router.add_get("/messages/{channel}/{message_id:.+}", message_status)
    app.router.add_get("/audit", audit)
    app.router.add_get("/incidents", incidents)
    app.router.add_post("/incidents", pull_brake)
    app.router.add_delete("/incidents/{topic}", clear_incident)
    app.router.add_get("/openapi.json", openapi)
