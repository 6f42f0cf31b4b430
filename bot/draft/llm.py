"""Drafting with any OpenAI-compatible chat-completions server, through the official openai client."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time

import openai
from pydantic import BaseModel, ValidationError

from bot.draft.knowledge import Passage
from bot.draft.prompts import Prompts
from bot.errors import DraftError
from bot.metrics import Metrics
from bot.models import Classification, Context, Draft, InboundMessage

logger = logging.getLogger(__name__)

_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


class _Answer(BaseModel):
    reply: str
    sources: list[str] = []
    answerable: bool


def parse_answer(content: str) -> _Answer | None:
    """The model's JSON answer, tolerating a code fence or words around it; None if there is none."""
    match = _JSON_OBJECT.search(content)
    if match is None:
        return None
    try:
        return _Answer.model_validate(json.loads(match.group(0)))
    except (json.JSONDecodeError, ValidationError):  # malformed: the caller asks once more
        return None


class LLMDrafter:
    """Asks the model for {"reply", "sources", "answerable"}; a malformed answer is asked for once more."""

    name = "llm"

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        prompts: Prompts,
        metrics: Metrics,
        *,
        model: str,
        temperature: float,
        max_tokens: int,
        max_concurrency: int,
        max_chars: dict[str, int],
    ) -> None:
        self._client = client
        self._prompts = prompts
        self._metrics = metrics
        self._model = model
        self._temperature = temperature
        self._max_tokens = max_tokens
        self._limit = asyncio.Semaphore(max_concurrency)
        self._max_chars = max_chars

    async def draft(
        self, message: InboundMessage, cls: Classification, context: Context, passages: list[Passage]
    ) -> Draft:
        chat = self._prompts.chat(message, context, passages, self._max_chars.get(message.channel, 1000))
        offered = {p.id for p in passages}
        content = ""
        for _attempt in range(2):
            content = await self._complete(chat)
            answer = parse_answer(content)
            if answer is not None:
                return Draft(
                    text=answer.reply.strip(),
                    answerable=answer.answerable and bool(answer.reply.strip()),
                    sources=tuple(s for s in answer.sources if s in offered),
                    drafter=self.name,
                )
            self._metrics.llm_requests.labels("malformed").inc()
        logger.warning("model answer malformed twice message=%s", message.key)
        return Draft(text=content.strip()[:2000], answerable=False, drafter=self.name, note="malformed model answer")

    async def _complete(self, chat: list[dict[str, str]]) -> str:
        async with self._limit:
            started = time.perf_counter()
            try:
                response = await self._client.chat.completions.create(
                    model=self._model,
                    messages=chat,  # type: ignore[arg-type]
                    temperature=self._temperature,
                    max_tokens=self._max_tokens,
                )
            except openai.APIError as error:
                self._metrics.llm_requests.labels("error").inc()
                raise DraftError(f"language model request failed: {error.__class__.__name__}") from error
            finally:
                self._metrics.llm_duration.observe(time.perf_counter() - started)
        self._metrics.llm_requests.labels("ok").inc()
        if response.usage is not None:
            self._metrics.llm_tokens.labels("prompt").inc(response.usage.prompt_tokens)
            self._metrics.llm_tokens.labels("completion").inc(response.usage.completion_tokens)
        return response.choices[0].message.content or "" if response.choices else ""
