"""Bearer-token authentication of the API: a reviewer's own token (`python -m bot users add`), or one of
the shared BOT_REVIEW_TOKENS. A wrong token is counted and answered slowly, which makes guessing slower."""

from __future__ import annotations

import asyncio
import hashlib
import hmac

from aiohttp import web
from aiohttp.typedefs import Handler

from bot.keys import METRICS, SETTINGS, USERS
from bot.review.users import Role

REVIEWER = web.RequestKey("reviewer", str)
ROLE = web.RequestKey("role", Role)
FAILURE_DELAY_S = 0.5
PUBLIC = {"/api/openapi.json"}  # what the API is may be read by anyone; what it holds may not


def reviewer_name(token: str) -> str:
    """A stable, non-secret name for a shared token, for the audit log."""
    return "token-" + hashlib.sha256(token.encode()).hexdigest()[:8]


async def _who(request: web.Request, token: str) -> tuple[str, Role] | None:
    """The name and role behind a token. The shared tokens are ops' own: they act as admins."""
    shared = request.app[SETTINGS].review_tokens
    if any(hmac.compare_digest(token.encode(), secret.get_secret_value().encode()) for secret in shared):
        return reviewer_name(token), Role.ADMIN
    user = await request.app[USERS].by_token(token)
    return (user.name, user.role) if user else None


@web.middleware
async def bearer_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every /api/ request needs a known bearer token."""
    if not request.path.startswith("/api/") or request.path in PUBLIC:
        return await handler(request)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    who = await _who(request, token) if scheme.lower() == "bearer" and token else None
    if who is None:
        request.app[METRICS].auth_failures.labels("token").inc()
        await asyncio.sleep(FAILURE_DELAY_S)
        return web.json_response(
            {"error": "unauthorized", "detail": "a valid bearer token is required"},
            status=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    request[REVIEWER], request[ROLE] = who
    return await handler(request)


def require_admin(request: web.Request) -> None:
    if request[ROLE] is not Role.ADMIN:
        raise web.HTTPForbidden(text='{"error": "forbidden", "detail": "admins only"}', content_type="application/json")
