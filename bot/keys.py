"""Typed keys of the state an aiohttp application holds (set up by app.py's cleanup contexts)."""

from __future__ import annotations

import asyncio

from aiohttp import web
from redis.asyncio import Redis

from bot.channels.base import Channel
from bot.config import Settings
from bot.incident import IncidentStore
from bot.metrics import Metrics
from bot.policy.schema import BrandPolicy
from bot.review.sessions import SessionStore
from bot.review.users import UserStore
from bot.store import RedisStore

SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
REDIS = web.AppKey("redis", Redis)
STORE = web.AppKey("store", RedisStore)
INCIDENTS = web.AppKey("incidents", IncidentStore)
USERS = web.AppKey("users", UserStore)
SESSIONS = web.AppKey("sessions", SessionStore)
CHANNELS = web.AppKey("channels", dict[str, Channel])
MODEL_READY = web.AppKey("model_ready", asyncio.Event)
POLICY = web.AppKey("policy", BrandPolicy)
