"""The review API: list pending cases, approve (optionally edited) or reject them, and look up a message."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from aiohttp import web

from bot.keys import METRICS, STORE
from bot.models import CaseState, Reply, ReviewCase
from bot.review.auth import REVIEWER, require_admin
from bot.review.openapi import OPENAPI
from bot.store import ReviewConflict
from bot.worker import stable_id

CLAIM_S = 600  # a claim left behind (a closed laptop) frees itself after ten minutes


def _error(status: int, reason: str, detail: str) -> web.Response:
    return web.json_response({"error": reason, "detail": detail}, status=status)


def _case_json(case: ReviewCase, now: datetime | None = None) -> dict[str, object]:
    """The case; with `now`, also the seconds left to its deadline and whether it is overdue."""
    data: dict[str, object] = json.loads(case.model_dump_json())
    if now is not None and case.decision.deadline is not None:
        left = (case.decision.deadline - now).total_seconds()
        data |= {"seconds_left": round(left), "overdue": left < 0}
    return data


async def _body(request: web.Request) -> dict[str, object]:
    """The optional JSON object of a POST; empty when there is no body."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "malformed_json", "detail": str(error)}), content_type="application/json"
        ) from error
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "invalid_body", "detail": "expected a JSON object"}),
            content_type="application/json",
        )
    return data


async def list_reviews(request: web.Request) -> web.Response:
    """GET /api/reviews: pending cases, urgent first, then oldest first."""
    store = request.app[STORE]
    cases = await store.pending_cases()
    holders = await store.claimed_by([case.case_id for case in cases])
    now = datetime.now(UTC)
    return web.json_response(
        {"cases": [_case_json(case, now) | {"claimed_by": holder} for case, holder in zip(cases, holders, strict=True)]}
    )


async def claim(request: web.Request) -> web.Response:
    """POST /api/reviews/{case_id}/claim: take the case for CLAIM_S seconds; 409 if someone else has it."""
    store, case_id = request.app[STORE], request.match_info["case_id"]
    if await store.case(case_id) is None:
        return _error(404, "not_found", f"no case {case_id}")
    holder = await store.claim(case_id, request[REVIEWER], CLAIM_S)
    if holder != request[REVIEWER]:
        return _error(409, "claimed", f"{holder} is working on this case")
    return web.json_response({"case_id": case_id, "claimed_by": holder, "seconds": CLAIM_S})


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


async def approve(request: web.Request) -> web.Response:
    """POST /api/reviews/{case_id}/approve [{"text": "..."}]: send the draft, or the reviewer's edit of it."""
    store, case_id = request.app[STORE], request.match_info["case_id"]
    body = await _body(request)
    case = await store.case(case_id)
    if case is None:
        return _error(404, "not_found", f"no case {case_id}")
    text = body.get("text", case.draft.text if case.draft else "")
    if not isinstance(text, str) or not text.strip():
        return _error(400, "empty_text", 'the case has no draft: give the reply as {"text": ...}')
    reply = Reply(
        reply_id=stable_id("r_", case.message.key), message=case.message, text=text.strip(), origin="reviewer"
    )
    return await _resolve(request, case_id, CaseState.APPROVED, reply)


async def reject(request: web.Request) -> web.Response:
    """POST /api/reviews/{case_id}/reject [{"reason": "..."}]: close the case; nothing is sent."""
    reason = (await _body(request)).get("reason")
    if reason is not None and not isinstance(reason, str):
        return _error(400, "invalid_reason", "reason must be a string")
    return await _resolve(request, request.match_info["case_id"], CaseState.REJECTED, None, reason)


async def _resolve(
    request: web.Request, case_id: str, state: CaseState, reply: Reply | None, reason: str | None = None
) -> web.Response:
    [holder] = await request.app[STORE].claimed_by([case_id])
    if holder is not None and holder != request[REVIEWER]:
        return _error(409, "claimed", f"{holder} is working on this case")
    try:
        case = await request.app[STORE].resolve(case_id, request[REVIEWER], state, reply, reason)
    except KeyError:
        return _error(404, "not_found", f"no case {case_id}")
    except ReviewConflict as error:
        return _error(409, "conflict", str(error))
    request.app[METRICS].review_actions.labels(state.value).inc()
    return web.json_response(_case_json(case))


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
    app.router.add_get("/api/messages/{channel}/{message_id}", message_status)
    app.router.add_get("/api/audit", audit)
    app.router.add_get("/api/openapi.json", openapi)
