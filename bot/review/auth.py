"""Who is asking: a bearer token on the API (a reviewer's own from `python -m bot users add`, or one of the
shared BOT_REVIEW_TOKENS), or the desk's session cookie on the page and the API behind it.

A request with the cookie that changes anything must also carry the session's CSRF token, so another site
can't act with a reviewer's cookie. Wrong credentials are counted and answered slowly, which makes
guessing slower; a user who is removed loses both their token and their sessions at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from urllib.parse import quote

from aiohttp import web
from aiohttp.typedefs import Handler

from bot.keys import METRICS, SESSIONS, SETTINGS, USERS
from bot.review.sessions import COOKIE, CSRF_FIELD, CSRF_HEADER, Session, same
from bot.review.users import Role

REVIEWER = web.RequestKey("reviewer", str)
ROLE = web.RequestKey("role", Role)
SESSION = web.RequestKey("session", Session)
FAILURE_DELAY_S = 0.5
DESK = "/desk"
PUBLIC = {"/api/openapi.json", f"{DESK}/login"}  # what the API is may be read by anyone; what it holds may not
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def reviewer_name(token: str) -> str:
    """A stable, non-secret name for a shared token, for the audit log."""
    return "token-" + hashlib.sha256(token.encode()).hexdigest()[:8]


async def _by_token(request: web.Request, token: str) -> tuple[str, Role] | None:
    """The name and role behind a token. The shared tokens are ops' own: they act as admins."""
    shared = request.config_dict[SETTINGS].review_tokens
    if any(hmac.compare_digest(token.encode(), secret.get_secret_value().encode()) for secret in shared):
        return reviewer_name(token), Role.ADMIN
    user = await request.config_dict[USERS].by_token(token)
    return (user.name, user.role) if user else None


async def _by_session(request: web.Request) -> tuple[Session, Role] | None:
    cookie = request.cookies.get(COOKIE)
    session = await request.config_dict[SESSIONS].get(cookie) if cookie else None
    user = await request.config_dict[USERS].get(session.name) if session else None
    return (session, user.role) if session and user else None


async def _csrf_token(request: web.Request) -> str | None:
    if CSRF_HEADER in request.headers:
        return request.headers[CSRF_HEADER]
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        value = (await request.post()).get(CSRF_FIELD)  # aiohttp keeps the parsed form for the handler
        return value if isinstance(value, str) else None
    return None


async def refuse(request: web.Request, kind: str, status: int, reason: str, detail: str) -> web.Response:
    """Count the failure, wait, and say why (as JSON on the API, as text on the desk)."""
    request.config_dict[METRICS].auth_failures.labels(kind).inc()
    await asyncio.sleep(FAILURE_DELAY_S)
    if not request.path.startswith("/api/"):
        return web.Response(status=status, text=f"{detail}\n")
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    return web.json_response({"error": reason, "detail": detail}, status=status, headers=headers)


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every /api/ and /desk/ request needs a known bearer token or a live session (and CSRF to change)."""
    path = request.path
    api, desk = path.startswith("/api/"), path == DESK or path.startswith(DESK + "/")
    if not (api or desk) or path in PUBLIC or path.startswith(f"{DESK}/static/"):
        return await handler(request)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if api and (token or not request.cookies.get(COOKIE)):
        who = await _by_token(request, token) if scheme.lower() == "bearer" and token else None
        if who is None:
            return await refuse(request, "token", 401, "unauthorized", "a valid bearer token is required")
        request[REVIEWER], request[ROLE] = who
        return await handler(request)
    found = await _by_session(request)
    if found is None:
        if api:
            return await refuse(request, "session", 401, "unauthorized", "your session has ended: sign in again")
        raise web.HTTPSeeOther(f"{DESK}/login?next={quote(request.path_qs)}")
    session, role = found
    if request.method not in SAFE_METHODS and not same(await _csrf_token(request), session.csrf):
        return await refuse(request, "csrf", 403, "csrf", "missing or wrong CSRF token: reload the page")
    request[SESSION], request[REVIEWER], request[ROLE] = session, session.name, role
    return await handler(request)


def require_admin(request: web.Request) -> None:
    if request[ROLE] is not Role.ADMIN:
        raise web.HTTPForbidden(text='{"error": "forbidden", "detail": "admins only"}', content_type="application/json")
