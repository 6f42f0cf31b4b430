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
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import aiohttp
import openai
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from bot.channels import build_channels, off_channels
from bot.classify import Classifier
from bot.classify.encoder import TransformersEncoder, default_model_path
from bot.config import Settings
from bot.draft.backend import ChatBackend
from bot.draft.breaker import CircuitBreaker, State
from bot.draft.compose import Composer
from bot.draft.holding import Holding
from bot.draft.knowledge import KnowledgeIndex, Passage, load_knowledge
from bot.draft.llm import LLMDrafter
from bot.draft.local import TransformersBackend
from bot.draft.offline import Answer, OfflineDrafter, load_answers
from bot.draft.openai_chat import OpenAIChat
from bot.draft.prompts import Prompts
from bot.embedded import EmbeddedRedis
from bot.incident import IncidentStore
from bot.ingest import handshake, no_such_webhook, webhook
from bot.keys import CHANNELS, INCIDENTS, METRICS, MODEL_READY, POLICY, REDIS, SESSIONS, SETTINGS, STORE, USERS
from bot.metrics import Metrics, create_metrics
from bot.pipeline import Pipeline
from bot.policy.load import load_policy
from bot.policy.reload import PolicyWatcher
from bot.policy.schema import BrandPolicy
from bot.review.api import action_errors
from bot.review.api import add_routes as add_review_routes
from bot.review.auth import DESK, authenticate
from bot.review.pages import add_routes as add_desk_routes
from bot.review.pages import security_headers, to_desk
from bot.review.sessions import SessionStore
from bot.review.users import UserStore
from bot.status import sample
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
    holding: Holding


def load_brand(settings: Settings) -> Brand:
    """policies/ and prompts/, or a ConfigError naming the file and the reason."""
    policy = load_policy(settings.policies_dir)
    prompts = Prompts(settings.prompts_dir, set(policy.intents.intents))
    passages = load_knowledge(settings.prompts_dir / "knowledge")
    answers = load_answers(
        settings.prompts_dir / "answers", set(policy.intents.intents), {p.id: p for p in passages}, prompts.persona
    )
    holding = Holding(settings.prompts_dir / "holding.yaml", prompts.persona)
    return Brand(policy, prompts, passages, answers, holding)


def load_encoder(settings: Settings) -> TransformersEncoder:
    """The configured encoder (all-MiniLM-L6-v2 by default) in the configured precision: once per process."""
    return TransformersEncoder(settings.model_path or default_model_path(), settings.encoder_precision)


def build_classifier(settings: Settings, encoder: TransformersEncoder, policy: BrandPolicy) -> Classifier:
    """The brand's classifier as the service runs it: trained on the policy's examples (or loaded from the
    cache), with a message that comes alone served by ONNX Runtime unless turned off."""
    classifier = Classifier.build(encoder, policy, settings.model_cache, settings.intent_tuned_layers)
    if settings.encoder_onnx:
        encoder.serve_lone(settings.model_cache)
    return classifier


async def open_backend(settings: Settings) -> ChatBackend | None:
    """The configured chat model, or None when drafts are written offline only."""
    if settings.llm_provider == "transformers":
        return await asyncio.to_thread(TransformersBackend.load, Path(settings.llm_model))
    if settings.llm_base_url is None:
        return None
    client = openai.AsyncOpenAI(
        base_url=settings.llm_base_url,
        api_key=settings.llm_api_key.get_secret_value(),
        timeout=settings.llm_timeout,
        max_retries=0,  # LLMDrafter retries, counting each attempt
        http_client=openai.DefaultAioHttpClient(),
    )
    return OpenAIChat(client, settings.llm_model, settings.llm_json_mode, settings.llm_max_concurrency)


def build_composer(
    settings: Settings, brand: Brand, encoder: TransformersEncoder, backend: ChatBackend | None, metrics: Metrics
) -> Composer:
    """Knowledge index (embedded once, cached), the model drafter with its circuit breaker, the offline drafter."""
    by_intent = {intent: tuple(p.id for p in answer.sources) for intent, answer in brand.answers.items()}
    knowledge = KnowledgeIndex.build(brand.passages, encoder, by_intent, settings.model_cache)
    drafter = None
    if backend is not None:

        def show(state: State) -> None:
            for name in State:
                metrics.llm_circuit.labels(name.value).set(1 if name is state else 0)

        breaker = CircuitBreaker(settings.llm_breaker_failures, settings.llm_breaker_cooldown_s, on_change=show)
        show(breaker.state)
        drafter = LLMDrafter(backend, brand.prompts, metrics, settings, breaker)
    offline = OfflineDrafter(brand.answers, brand.prompts.persona)
    return Composer(knowledge, drafter, offline, brand.prompts.persona, metrics, settings.knowledge_passages)


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
    # A bounded pool whose callers wait for a free connection: redis-py's default pool raises once 100 are in
    # use, which a worker's concurrent batches and deliveries can reach under a burst.
    pool = BlockingConnectionPool.from_url(
        url, decode_responses=True, health_check_interval=30, max_connections=settings.redis_connections, timeout=10
    )
    redis = Redis.from_pool(pool)
    app[REDIS] = redis
    app[STORE] = RedisStore(redis, settings.redis_prefix, ttl_s=settings.dedup_ttl_s)
    app[USERS] = UserStore(redis, settings.redis_prefix)
    app[INCIDENTS] = IncidentStore(redis, settings.redis_prefix)
    app[SESSIONS] = SessionStore(redis, settings.redis_prefix, round(settings.session_hours * 3600))
    await app[STORE].setup()
    yield
    await redis.aclose()
    if embedded is not None:
        await embedded.stop()


async def http_ctx(app: web.Application) -> AsyncIterator[None]:
    """One outbound HTTP session for every channel's deliveries."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        channels = app[CHANNELS] = build_channels(app[SETTINGS], session)
        for name, credentials in off_channels(app[SETTINGS]).items():
            logger.info("channel %s is off: set %s to turn it on", name, credentials)
        if not channels:
            logger.warning("no channel configured: nothing can reach the bot")
        else:
            logger.info("channels on: %s", ", ".join(sorted(channels)))
        yield


def _consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


async def _run_workers(app: web.Application, stopping: asyncio.Event) -> None:
    """Load the models (off the event loop), then run the worker and the sender until told to stop."""
    settings, brand, metrics = app[SETTINGS], app[BRAND], app[METRICS]
    started = time.perf_counter()
    encoder = await asyncio.to_thread(load_encoder, settings)
    backend = None
    try:
        classifier = await encoder.in_thread(build_classifier, settings, encoder, brand.policy)
        backend = await open_backend(settings)
        composer = await encoder.in_thread(build_composer, settings, brand, encoder, backend, metrics)
        metrics.model_load.set(time.perf_counter() - started)
        logger.info("model ready seconds=%.1f drafter=%s", time.perf_counter() - started, backend and backend.name)
        app[MODEL_READY].set()
        pipeline = Pipeline(classifier, composer, brand.policy, brand.holding, metrics)
        consumer = _consumer_name()
        worker = Worker(app[STORE], pipeline, settings, metrics, consumer)
        sender = Sender(app[STORE], app[CHANNELS], settings, metrics, consumer)
        watcher = PolicyWatcher(settings.policies_dir, partial(adopt, pipeline), metrics)
        await asyncio.gather(worker.run(stopping), sender.run(stopping), watcher.run(stopping))
    finally:
        encoder.close()
        if backend is not None:
            await backend.close()


def adopt(pipeline: Pipeline, policy: BrandPolicy) -> None:
    """A reloaded policy takes over from the next batch; the trained model stays until a restart."""
    if not pipeline.classifier.adopt(policy):
        logger.warning(
            "intent or sentiment examples changed: the model keeps its training until `python -m bot train` "
            "and a restart; the rest of the new policy applies now"
        )
    pipeline.policy = policy


async def workers_ctx(app: web.Application) -> AsyncIterator[None]:
    """The worker and sender as one owned task; on shutdown they finish the batch in hand, within a timeout."""
    settings = app[SETTINGS]
    stopping = asyncio.Event()
    task = asyncio.create_task(_run_workers(app, stopping), name="workers")
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
    """Prometheus text; the queues' gauges (streams, review queue, SLA breaches) are read from Redis at each scrape."""
    registry = request.app[METRICS]
    try:
        await sample(request.app[STORE], registry, datetime.now(UTC))
    except (RedisError, OSError) as error:  # the rest of the metrics still matter when Redis is down
        logger.warning("queue metrics unavailable: %r", error)
    body = generate_latest(registry.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_app(settings: Settings, *, webhooks: bool = True, workers: bool = True) -> web.Application:
    """The application; raises ConfigError before anything starts if the brand's files are invalid."""
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[METRICS] = create_metrics()
    app[BRAND] = load_brand(settings)
    app[POLICY] = app[BRAND].policy  # as loaded at start (the workers' own copy follows reloads)
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
        app.router.add_get("/webhooks/{channel}", handshake)
        app.router.add_route("*", "/webhooks/{path:.*}", no_such_webhook)
        app.router.add_get("/", to_desk)
        app.router.add_get(DESK, to_desk)  # before the desk's own resource, which would answer it with a 404
        api, desk = _for_people(), _for_people()
        add_review_routes(api)
        add_desk_routes(desk, app[BRAND].passages)
        app.add_subapp("/api", api)
        app.add_subapp(DESK, desk)
    return app


def _for_people() -> web.Application:
    """A sub-application for what people use (the review API, the desk): signed in, CSRF-checked, errors as
    JSON, pages that can't be framed. Its middlewares run for its own routes only, so a webhook, which answers a
    platform and must be fast, never passes through them (three middlewares cost the intake ~7% of its
    throughput)."""
    return web.Application(middlewares=[security_headers, authenticate, action_errors])
