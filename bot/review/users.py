"""Reviewer accounts in Redis: a name, a role, an argon2 hash of the password, and an API token.

Tokens are 256 random bits, so a SHA-256 of one is enough to look it up without storing it; passwords are
chosen by people, so they get argon2 (slow on purpose). Neither is ever stored or logged in clear: `add`
returns both once, for the admin to hand over.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from datetime import UTC, datetime
from enum import StrEnum
from typing import cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from redis.asyncio import Redis

NAME = r"^[a-z][a-z0-9_.-]{1,31}$"


class Role(StrEnum):
    REVIEWER = "reviewer"
    ADMIN = "admin"


class User(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=NAME)
    role: Role
    password_hash: str
    token_hash: str
    created_at: AwareDatetime


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class UserExists(Exception):
    """There is already a user of that name."""


class UserStore:
    """`{prefix}:users` (name -> user) and `{prefix}:tokens` (token hash -> name)."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.users = f"{prefix}:users"
        self.tokens = f"{prefix}:tokens"
        self.hasher = PasswordHasher()
        self._dummy = self.hasher.hash(secrets.token_urlsafe(16))  # verified against when the name is unknown

    async def add(self, name: str, role: Role) -> tuple[User, str, str]:
        """A new user, with its one-time password and API token (shown once, stored only as hashes)."""
        password, token = secrets.token_urlsafe(12), secrets.token_urlsafe(32)
        user = User(
            name=name,
            role=role,
            password_hash=self.hasher.hash(password),
            token_hash=token_hash(token),
            created_at=datetime.now(UTC),
        )
        if not await self.redis.hsetnx(self.users, name, user.model_dump_json()):  # type: ignore[misc]
            raise UserExists(name)
        await self.redis.hset(self.tokens, user.token_hash, name)  # type: ignore[misc]
        return user, password, token

    async def get(self, name: str) -> User | None:
        raw = await self.redis.hget(self.users, name)  # type: ignore[misc]
        return User.model_validate_json(raw) if raw else None

    async def all(self) -> list[User]:
        raw = cast(dict[str, str], await self.redis.hgetall(self.users))  # type: ignore[misc]
        return sorted((User.model_validate_json(item) for item in raw.values()), key=lambda u: u.name)

    async def remove(self, name: str) -> bool:
        user = await self.get(name)
        if user is None:
            return False
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self.users, name)
            pipe.hdel(self.tokens, user.token_hash)
            await pipe.execute()
        return True

    async def by_token(self, token: str) -> User | None:
        name = cast(str | None, await self.redis.hget(self.tokens, token_hash(token)))  # type: ignore[misc]
        return await self.get(name) if name else None

    async def by_password(self, name: str, password: str) -> User | None:
        """The user if the password is theirs; the hash check runs even for an unknown name (no timing tell)."""
        user = await self.get(name)
        try:  # argon2 takes tens of milliseconds of CPU on purpose: not on the event loop
            await asyncio.to_thread(self.hasher.verify, user.password_hash if user else self._dummy, password)
        except (VerificationError, InvalidHashError):
            return None
        return user
