"""Drafting with a chat model (any backend.py backend): the prompt, the structured answer, and resilience.

Resilience, in the order a call meets it: the concurrency limit of the endpoint (a slot is held through the
call's retries), the circuit breaker (refuses at once while the model keeps failing: judged when the call
could go out, so calls queued before it opened don't reach a failing model), the backend's timeout, and
retries with exponential backoff and jitter on 429 and 5xx, honouring Retry-After when it is short enough to
wait for. A DraftError out of here sends the message to the offline drafter (compose.py), never into limbo.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time

from pydantic import BaseModel, ValidationError

from bot.config import Settings
from bot.draft.backend import Chat, ChatBackend, Completion, TransientError
from bot.draft.breaker import CircuitBreaker
from bot.draft.knowledge import Passage
from bot.draft.prompts import Prompts
from bot.errors import DraftError
from bot.metrics import Metrics
from bot.models import Classification, Context, Draft, InboundMessage

logger = logging.getLogger(__name__)


class _Answer(BaseModel):
    reply: str
    sources: list[str] = []
    answerable: bool


def parse_answer(content: str) -> _Answer | None:
    """The first JSON object in the model's answer that has the right shape, tolerating a code fence or words
    around it; None if there is none (the caller asks once more)."""
    decoder = json.JSONDecoder()
    start = content.find("{")
    while start != -1:
        try:
            value, _ = decoder.raw_decode(content, start)
            return _Answer.model_validate(value)
        except (json.JSONDecodeError, ValidationError):
            start = content.find("{", start + 1)
    return None


class LLMDrafter:
    """Asks the model for {"reply", "sources", "answerable"}; a malformed answer is asked for once more."""

    name = "llm"

    def __init__(
        self, backend: ChatBackend, prompts: Prompts, metrics: Metrics, settings: Settings, breaker: CircuitBreaker
    ) -> None:
        self.backend = backend
        self.breaker = breaker
        self._prompts = prompts
        self._metrics = metrics
        self._settings = settings
        self._limit = asyncio.Semaphore(backend.max_concurrency)

    async def draft(
        self, message: InboundMessage, cls: Classification, context: Context, passages: list[Passage]
    ) -> Draft:
        chat = self._prompts.chat(message, cls.intent, context, passages, self._settings.llm_history_turns)
        async with self._limit:  # a slot first: the circuit is judged when the call can go out, not when it queued
            if not self.breaker.allow():  # from here on, success() or failure() must follow: it may be the probe
                self._metrics.llm_requests.labels("circuit_open").inc()
                raise DraftError("circuit open: the language model failed repeatedly", kind="circuit_open")
            healthy, wait = False, 0.0
            try:
                draft = await self._ask(chat, message, {p.id for p in passages})
                healthy = True  # a malformed answer still means the endpoint works
                return draft
            except TransientError as error:  # a Retry-After too long to wait for keeps the circuit open that long
                asked = error.retry_after or 0.0
                wait = asked if asked > self._settings.llm_max_retry_wait_s else 0.0
                raise
            finally:  # also on cancellation, so a half-open probe never stays out forever
                if healthy:
                    self.breaker.success()
                else:
                    self.breaker.failure(wait)

    async def _ask(self, chat: Chat, message: InboundMessage, offered: set[str]) -> Draft:
        content = ""
        for _attempt in range(2):
            content = (await self._complete(chat)).text
            answer = parse_answer(content)
            if answer is not None:
                return Draft(
                    text=answer.reply.strip(),
                    answerable=answer.answerable and bool(answer.reply.strip()),
                    sources=tuple(s for s in answer.sources if s in offered),
                    drafter=self.name,
                )
            self._metrics.llm_requests.labels("malformed").inc()
        logger.warning("model answer malformed twice")
        return Draft(text=content.strip()[:2000], answerable=False, drafter=self.name, note="malformed model answer")

    async def _complete(self, chat: Chat) -> Completion:
        """One completion, retried on transient failures with exponential backoff and jitter."""
        settings = self._settings
        attempt = 0
        while True:
            try:
                completion = await self._attempt(chat)
            except TransientError as error:
                wait = max(settings.llm_backoff_s * 2**attempt * random.uniform(0.5, 1.5), error.retry_after or 0)
                if attempt >= settings.llm_retries or wait > settings.llm_max_retry_wait_s:
                    raise
                logger.info("%s; retrying in %.1f s", error, wait)
                await asyncio.sleep(wait)
                attempt += 1
            else:
                self._record(completion)
                return completion

    async def _attempt(self, chat: Chat) -> Completion:
        started = time.perf_counter()
        try:
            return await self.backend.complete(
                chat, max_tokens=self._settings.llm_max_tokens, temperature=self._settings.llm_temperature
            )
        except DraftError as error:
            self._metrics.llm_requests.labels(error.kind).inc()
            raise
        finally:
            self._metrics.llm_duration.observe(time.perf_counter() - started)

    def _record(self, completion: Completion) -> None:
        settings, metrics = self._settings, self._metrics
        metrics.llm_requests.labels("ok").inc()
        metrics.llm_tokens.labels("prompt").inc(completion.prompt_tokens)
        metrics.llm_tokens.labels("completion").inc(completion.completion_tokens)
        cost = (
            completion.prompt_tokens * settings.llm_price_prompt
            + completion.completion_tokens * settings.llm_price_completion
        ) / 1_000_000
        if cost:
            metrics.llm_cost.inc(cost)
