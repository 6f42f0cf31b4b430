"""Desk sessions: a random id in an HttpOnly, SameSite=Strict cookie, the session itself in Redis.

The cookie holds nothing but 256 random bits; Redis keeps only their SHA-256, so a read of Redis can't be
replayed as a cookie. Each session carries its own CSRF token, which every form and every state-changing
call made with the cookie must echo (a hidden field, or the X-CSRF-Token header).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from aiohttp import web
from pydantic import BaseModel, ConfigDict
from redis.asyncio import Redis

COOKIE = "desk_session"
LOGIN_CSRF_COOKIE = "desk_login_csrf"  # before sign-in there is no session: the login form double-submits this
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf"


class Session(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    csrf: str


class SessionStore:
    """`{prefix}:session:<sha256 of the cookie>` -> Session, expiring after `ttl_s`."""

    def __init__(self, redis: Redis, prefix: str, ttl_s: int) -> None:
        self.redis = redis
        self.prefix = f"{prefix}:session:"
        self.ttl_s = ttl_s

    def _key(self, cookie: str) -> str:
        return self.prefix + hashlib.sha256(cookie.encode()).hexdigest()

    async def open(self, name: str) -> tuple[str, Session]:
        """A new session for `name`: the cookie value to set, and the session."""
        cookie, session = secrets.token_urlsafe(32), Session(name=name, csrf=secrets.token_urlsafe(32))
        await self.redis.set(self._key(cookie), session.model_dump_json(), ex=self.ttl_s)
        return cookie, session

    async def get(self, cookie: str) -> Session | None:
        raw = await self.redis.get(self._key(cookie))
        return Session.model_validate_json(raw) if raw else None

    async def close(self, cookie: str) -> None:
        await self.redis.delete(self._key(cookie))


def same(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a submitted CSRF token with the expected one."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def set_cookie(response: web.StreamResponse, name: str, value: str, max_age: int, secure: bool) -> None:
    """HttpOnly and SameSite=Strict always: page scripts can't read it and other sites can't send it."""
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="Strict", secure=secure)
