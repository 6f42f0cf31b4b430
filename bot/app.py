"""The aiohttp application factory: routes, and one cleanup context per resource.

One factory serves the three ways to run: `serve` (web + workers + sender in one process), `web`
(webhooks and API only) and `worker` (pipeline and sender, with /metrics and health on a side port).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import openai
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.channels import build_channels
from bot.classify import Classifier
from bot.classify.encoder import TransformersEncoder, default_model_path
from bot.config import Settings
from bot.draft import Drafter
from bot.draft.knowledge import KnowledgeIndex, Passage, load_knowledge
from bot.draft.llm import LLMDrafter
from bot.draft.offline import Answer, OfflineDrafter, load_answers
from bot.draft.prompts import Prompts
from bot.embedded import EmbeddedRedis
from bot.ingest import webhook
from bot.keys import CHANNELS, METRICS, MODEL_READY, REDIS, SETTINGS, STORE
from bot.metrics import create_metrics
from bot.pipeline import Pipeline
from bot.policy.load import load_policy
from bot.policy.schema import BrandPolicy
from bot.review.api import add_routes as add_review_routes
from bot.review.auth import bearer_auth
from bot.store import RedisStore
from bot.worker import Sender, Worker

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Brand:
    """The brand's configuration files, loaded and cross-checked before anything starts."""

    policy: BrandPolicy
    prompts: Prompts
    passages: list[Passage]
    answers: dict[str, Answer]


def load_brand(settings: Settings) -> Brand:
    """policies/ and prompts/, or a ConfigError naming the file and the reason."""
    policy = load_policy(settings.policies_dir)
    prompts = Prompts(settings.prompts_dir)
    passages = load_knowledge(settings.prompts_dir / "knowledge")
    answers = load_answers(
        settings.prompts_dir / "answers", set(policy.intents.intents), {p.id: p for p in passages}, prompts.persona
    )
    return Brand(policy, prompts, passages, answers)


BRAND = web.AppKey("brand", Brand)
TASKS = web.AppKey("tasks", set[asyncio.Task[None]])
WORKERS = web.AppKey("workers", bool)


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    """The Redis connection pool (an embedded server first, when no URL is configured)."""
    settings = app[SETTINGS]
    embedded = None
    url = settings.redis_url
    if url is None:
        embedded = EmbeddedRedis(settings.data_dir / "redis")
        url = await embedded.start()
        logger.info("no BOT_REDIS_URL: using an embedded Redis in %s", embedded.directory)
    redis = Redis.from_url(url, decode_responses=True, health_check_interval=30)
    app[REDIS] = redis
    app[STORE] = RedisStore(redis, settings.redis_prefix, ttl_s=settings.dedup_ttl_s)
    await app[STORE].setup()
    yield
    await redis.aclose()
    if embedded is not None:
        await embedded.stop()


async def http_ctx(app: web.Application) -> AsyncIterator[None]:
    """One outbound HTTP session for every channel's deliveries."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        app[CHANNELS] = build_channels(app[SETTINGS], session)
        if not app[CHANNELS]:
            logger.warning("no channel configured: set BOT_GENERIC_SECRET to accept messages")
        yield


def _consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


async def _run_workers(app: web.Application, stopping: asyncio.Event, llm: openai.AsyncOpenAI | None) -> None:
    """Load the model (off the event loop), then run the worker and the sender until told to stop."""
    settings, brand, metrics = app[SETTINGS], app[BRAND], app[METRICS]
    started = time.perf_counter()
    encoder = await asyncio.to_thread(TransformersEncoder, settings.model_path or default_model_path())
    try:
        classifier = await encoder.in_thread(
            Classifier.build, encoder, brand.policy, settings.model_cache, settings.intent_tuned_layers
        )
        knowledge = await encoder.in_thread(KnowledgeIndex.build, brand.passages, encoder)
        metrics.model_load.set(time.perf_counter() - started)
        logger.info("model ready seconds=%.1f", time.perf_counter() - started)
        app[MODEL_READY].set()
        limits = {name: spec.max_chars for name, spec in brand.policy.decision.channels.items()}
        drafter: Drafter | None = None
        if llm is not None:
            drafter = LLMDrafter(
                llm,
                brand.prompts,
                metrics,
                model=settings.llm_model,
                temperature=settings.llm_temperature,
                max_tokens=settings.llm_max_tokens,
                max_concurrency=settings.llm_max_concurrency,
                max_chars=limits,
            )
        pipeline = Pipeline(
            classifier, knowledge, drafter, OfflineDrafter(brand.answers, brand.prompts.persona), brand.policy, metrics
        )
        consumer = _consumer_name()
        worker = Worker(app[STORE], pipeline, settings, metrics, consumer)
        sender = Sender(app[STORE], app[CHANNELS], settings, metrics, consumer)
        await asyncio.gather(worker.run(stopping), sender.run(stopping))
    finally:
        encoder.close()


async def workers_ctx(app: web.Application) -> AsyncIterator[None]:
    """The worker and sender as one owned task; on shutdown they finish the batch in hand, within a timeout."""
    settings = app[SETTINGS]
    llm = None
    if settings.llm_base_url:
        llm = openai.AsyncOpenAI(
            base_url=settings.llm_base_url,
            api_key=settings.llm_api_key.get_secret_value(),
            timeout=settings.llm_timeout,
            max_retries=1,
            http_client=openai.DefaultAioHttpClient(),
        )
    stopping = asyncio.Event()
    task = asyncio.create_task(_run_workers(app, stopping, llm), name="workers")
    app[TASKS].add(task)
    task.add_done_callback(_report_death)
    yield
    stopping.set()
    done, _ = await asyncio.wait({task}, timeout=settings.shutdown_timeout_s)
    if not done:  # unfinished messages stay pending in Redis and are reclaimed by another worker
        logger.warning(
            "workers did not finish within %.0f s; leaving their messages pending", settings.shutdown_timeout_s
        )
        task.cancel()
        await asyncio.wait({task})
    if llm is not None:
        await llm.close()


def _report_death(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("background task died task=%s", task.get_name(), exc_info=task.exception())


async def healthz(request: web.Request) -> web.Response:
    """The process is up, and none of its background tasks has died."""
    dead = [t.get_name() for t in request.app[TASKS] if t.done() and not t.cancelled() and t.exception()]
    if dead:
        return web.json_response({"status": "failed", "dead_tasks": dead}, status=503)
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready to take traffic: Redis answers, and (in a process that runs workers) the model is loaded."""
    problems = []
    try:
        await request.app[REDIS].ping()
    except (RedisError, OSError) as error:  # report, don't raise: this endpoint exists to say "not ready"
        problems.append(f"redis: {error.__class__.__name__}")
    if request.app[WORKERS] and not request.app[MODEL_READY].is_set():
        problems.append("model: loading")
    if problems:
        return web.json_response({"status": "not ready", "problems": problems}, status=503)
    return web.json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_app(settings: Settings, *, webhooks: bool = True, workers: bool = True) -> web.Application:
    """The application; raises ConfigError before anything starts if the brand's files are invalid."""
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[bearer_auth])
    app[SETTINGS] = settings
    app[METRICS] = create_metrics()
    app[BRAND] = load_brand(settings)
    app[MODEL_READY] = asyncio.Event()
    app[TASKS] = set()
    app[WORKERS] = workers
    app.cleanup_ctx.append(redis_ctx)
    app.cleanup_ctx.append(http_ctx)
    if workers:
        app.cleanup_ctx.append(workers_ctx)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    if webhooks:
        app.router.add_post("/webhooks/{channel}", webhook)
        add_review_routes(app)
    return app
