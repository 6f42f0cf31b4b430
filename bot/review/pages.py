"""The reviewers' desk: server-rendered pages (aiohttp-jinja2) over the same actions as the API.

Every page works without JavaScript (plain forms, each with the session's CSRF token, answered with a
redirect); desk.js adds what makes it quick: new cases without a reload and keyboard shortcuts.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp.typedefs import Handler

from bot.draft.knowledge import Passage
from bot.keys import INCIDENTS, METRICS, POLICY, SESSIONS, SETTINGS, STORE, USERS
from bot.review import actions
from bot.review.actions import ActionError
from bot.review.auth import DESK, FAILURE_DELAY_S, REVIEWER, ROLE, SESSION
from bot.review.learning import Verdict
from bot.review.queue import Filters, choices, find, seconds_left
from bot.review.sessions import COOKIE, CSRF_FIELD, LOGIN_CSRF_COOKIE, same, set_cookie
from bot.review.users import Role

logger = logging.getLogger(__name__)
HERE = Path(__file__).parent
PASSAGES = web.AppKey("passages", dict[str, Passage])
SECURITY_HEADERS = {
    # No inline script or style anywhere: a reply that smuggles markup in can't run.
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
DONE = {"approve": "approved", "reject": "rejected", "handover": "handed_over"}  # form action -> notice
NOTICES = {
    "approved": "Approved: the reply is on its way.",
    "rejected": "Rejected: nothing was sent.",
    "handed_over": "Handed over: the bot stays out of this conversation.",
    "claimed": "The case is yours for 10 minutes.",
    "incident_cleared": "Incident cleared: the bot answers that topic as usual again.",
}


def _left(seconds: float | None) -> str:
    """'12 min left', 'overdue 3 min', '' (no deadline)."""
    if seconds is None:
        return ""
    minutes = round(abs(seconds) / 60)
    shown = f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"
    return f"{shown} left" if seconds >= 0 else f"overdue {shown}"


def _context(request: web.Request, **values: Any) -> dict[str, Any]:
    session = request.get(SESSION)
    return {
        "user": request.get(REVIEWER),
        "admin": request.get(ROLE) is Role.ADMIN,
        "csrf": session.csrf if session else "",
        "csrf_field": CSRF_FIELD,
        "notice": NOTICES.get(request.query.get("done", ""), ""),
        "error": request.query.get("error", ""),
        "incidents": [],
        **values,
    }


async def _page(request: web.Request, **values: Any) -> dict[str, Any]:
    """A whole page's values: every page a reviewer sees carries the incidents in force (base.html's banner)."""
    return _context(request, incidents=list((await request.config_dict[INCIDENTS].active()).values()), **values)


def _back(path: str, **query: str) -> web.HTTPSeeOther:
    """Post/redirect/get: after a form, go where the reviewer should look next."""
    return web.HTTPSeeOther(f"{path}?{urlencode(query)}" if query else path)


async def _queue_values(request: web.Request) -> dict[str, Any]:
    try:
        filters = Filters.parse(request.query)
    except ValueError as error:
        raise web.HTTPBadRequest(text=f"{error}\n") from error
    found = await find(request.config_dict[STORE], filters)
    now = datetime.now(UTC)
    rows = [(case, holder, seconds_left(case, now)) for case, holder in found]
    return {"rows": rows, "filters": filters, "left": _left, "choices": choices([case for case, _ in found])}


@aiohttp_jinja2.template("queue.html")
async def queue_page(request: web.Request) -> dict[str, Any]:
    return await _page(request, **await _queue_values(request))


@aiohttp_jinja2.template("cases.html")
async def queue_rows(request: web.Request) -> dict[str, Any]:
    """Just the list, for desk.js to swap in when new cases arrive."""
    return _context(request, **await _queue_values(request))


@aiohttp_jinja2.template("case.html")
async def case_page(request: web.Request) -> dict[str, Any]:
    store = request.config_dict[STORE]
    case = await store.case(request.match_info["case_id"])
    if case is None:
        raise web.HTTPNotFound(text="No such case: it may have expired.\n")
    [holder] = await store.claimed_by([case.case_id])
    conversation = await store.conversation(case.message.channel, case.message.conversation_id)
    passages = request.config_dict[PASSAGES]
    used = [passages[p] for p in case.draft.retrieved if p in passages] if case.draft else []
    return await _page(
        request,
        case=case,
        holder=holder,
        left=_left(seconds_left(case, datetime.now(UTC))),
        turns=conversation.turns,
        handed_to=conversation.handed_to,
        passages=used,
        sources=set(case.draft.sources) if case.draft else set(),
    )


async def act(request: web.Request) -> web.StreamResponse:
    """POST /desk/cases/{case_id}: the form's `action` (claim, approve, reject, handover)."""
    app, case_id, reviewer = request.config_dict, request.match_info["case_id"], request[REVIEWER]
    form = await request.post()
    action = form.get("action")
    here = f"{DESK}/cases/{case_id}"
    try:
        if action == "claim":
            await actions.claim(app[STORE], case_id, reviewer)
            raise _back(here, done="claimed")
        if action == "approve":
            await actions.approve(app[STORE], app[METRICS], case_id, reviewer, form.get("text"))
        elif action == "reject":
            await actions.reject(app[STORE], app[METRICS], case_id, reviewer, form.get("reason"))
        elif action == "handover":
            seconds = round(app[SETTINGS].handover_hours * 3600)
            await actions.hand_over(app[STORE], app[METRICS], case_id, reviewer, form.get("reason"), seconds)
        else:
            raise web.HTTPBadRequest(text="action must be claim, approve, reject or handover\n")
    except ActionError as error:
        raise _back(here, error=error.detail) from error
    raise _back(f"{DESK}/", done=DONE[str(action)])


async def clear_incident(request: web.Request) -> web.StreamResponse:
    """POST /desk/incidents/{topic}/clear: an admin lifts the incident (the form carries the CSRF token)."""
    if request[ROLE] is not Role.ADMIN:
        raise web.HTTPForbidden(text="Only admins can clear an incident.\n")
    app, topic = request.config_dict, request.match_info["topic"]
    quiet_s = app[POLICY].decision.incident.window_minutes * 60
    if await app[INCIDENTS].clear(topic, request[REVIEWER], quiet_s) is None:
        raise _back(f"{DESK}/", error=f"No incident holds {topic}: someone may have cleared it already.")
    app[METRICS].incident_active.labels(topic).set(0)
    logger.warning("incident cleared", extra={"topic": topic, "by": request[REVIEWER]})
    raise _back(f"{DESK}/", done="incident_cleared")


@aiohttp_jinja2.template("learning.html")
async def learning_page(request: web.Request) -> dict[str, Any]:
    figures = await request.config_dict[STORE].learning()
    rows = []
    for intent, counts in sorted(figures.items()):
        reviewed = sum(counts.get(v.value, 0) for v in Verdict)
        shares = {v.value: counts.get(v.value, 0) / reviewed if reviewed else 0.0 for v in Verdict}
        shadow = counts.get("shadow_agreed", 0), counts.get("shadow_differed", 0)
        rows.append({"intent": intent, "reviewed": reviewed, "shares": shares, "shadow": shadow})
    return await _page(request, rows=rows, verdicts=list(Verdict))


@aiohttp_jinja2.template("audit.html")
async def audit_page(request: web.Request) -> dict[str, Any]:
    if request[ROLE] is not Role.ADMIN:
        raise web.HTTPForbidden(text="The audit log is for admins.\n")
    return await _page(request, entries=await request.config_dict[STORE].audit_log(200))


async def login_page(request: web.Request) -> web.StreamResponse:
    """The sign-in form, with a fresh double-submit CSRF token (there is no session yet to hold one)."""
    return _login(request, 200, "")


def _login(request: web.Request, status: int, error: str) -> web.StreamResponse:
    token = secrets.token_urlsafe(32)
    response = aiohttp_jinja2.render_template(
        "login.html",
        request,
        _context(request, login_csrf=token, next=request.query.get("next", ""), error=error),
        status=status,
    )
    set_cookie(response, LOGIN_CSRF_COOKIE, token, 3600, _secure(request))
    return response


async def login(request: web.Request) -> web.StreamResponse:
    """POST /desk/login: a session cookie for the right name and password; a slow, counted refusal otherwise."""
    form = await request.post()
    if not same(_text(form.get(CSRF_FIELD)), request.cookies.get(LOGIN_CSRF_COOKIE, "") or secrets.token_hex()):
        request.config_dict[METRICS].auth_failures.labels("csrf").inc()
        await asyncio.sleep(FAILURE_DELAY_S)
        return _login(request, 403, "The form expired: sign in again.")
    user = await request.config_dict[USERS].by_password(_text(form.get("name")).strip(), _text(form.get("password")))
    if user is None:
        request.config_dict[METRICS].auth_failures.labels("password").inc()
        await asyncio.sleep(FAILURE_DELAY_S)
        return _login(request, 401, "Wrong name or password.")
    cookie, _ = await request.config_dict[SESSIONS].open(user.name)
    target = _text(request.query.get("next"))
    response = web.HTTPSeeOther(target if target.startswith(f"{DESK}/") else f"{DESK}/")
    set_cookie(response, COOKIE, cookie, round(request.config_dict[SETTINGS].session_hours * 3600), _secure(request))
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/")
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    await request.config_dict[SESSIONS].close(request.cookies.get(COOKIE, ""))
    response = web.HTTPSeeOther(f"{DESK}/login")
    response.del_cookie(COOKIE, path="/")
    raise response


def _secure(request: web.Request) -> bool:
    """Cookies are Secure over HTTPS, and always when BOT_SECURE_COOKIES says TLS ends at a proxy in front."""
    return request.secure or request.config_dict[SETTINGS].secure_cookies


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The desk's pages and redirects carry the headers that keep them from being framed or injected."""
    try:
        response = await handler(request)
    except web.HTTPException as error:
        if request.path.startswith(DESK):
            error.headers.update(SECURITY_HEADERS)
        raise
    if request.path.startswith(DESK):
        response.headers.update(SECURITY_HEADERS)
    return response


def add_routes(app: web.Application, passages: list[Passage]) -> None:
    """The desk's routes, on the sub-application mounted at DESK."""
    app[PASSAGES] = {p.id: p for p in passages}
    aiohttp_jinja2.setup(
        app, loader=jinja2.FileSystemLoader(HERE / "templates"), undefined=jinja2.StrictUndefined, autoescape=True
    )
    app.router.add_get("/", queue_page)
    app.router.add_get("/queue", queue_rows)
    app.router.add_get("/cases/{case_id}", case_page)
    app.router.add_post("/cases/{case_id}", act)
    app.router.add_get("/learning", learning_page)
    app.router.add_get("/audit", audit_page)
    app.router.add_post("/incidents/{topic}/clear", clear_incident)
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_static("/static", HERE / "static")


async def to_desk(request: web.Request) -> web.StreamResponse:
    """/ and /desk: the desk's queue."""
    raise web.HTTPFound(f"{DESK}/")
