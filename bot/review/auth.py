"""Bearer-token authentication of the API (tokens from BOT_REVIEW_TOKENS)."""

from __future__ import annotations

import hashlib
import hmac

from aiohttp import web
from aiohttp.typedefs import Handler

from bot.keys import METRICS, SETTINGS

REVIEWER = web.RequestKey("reviewer", str)


def reviewer_name(token: str) -> str:
    """A stable, non-secret name for a token, for the audit log."""
    return "token-" + hashlib.sha256(token.encode()).hexdigest()[:8]


@web.middleware
async def bearer_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every /api/ request needs a known bearer token; compared in constant time against each one."""
    if not request.path.startswith("/api/"):
        return await handler(request)
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    known = request.app[SETTINGS].review_tokens
    matched = scheme.lower() == "bearer" and any(
        hmac.compare_digest(token.encode(), secret.get_secret_value().encode()) for secret in known
    )
    if not matched:
        request.app[METRICS].webhook_rejections.labels("api", "unauthorized").inc()
        return web.json_response(
            {"error": "unauthorized", "detail": "a valid bearer token is required"},
            status=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    request[REVIEWER] = reviewer_name(token)
    return await handler(request)
