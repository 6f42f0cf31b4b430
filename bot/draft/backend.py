"""What a chat model is to the drafter: chat messages in, text and token counts out.

Two backends implement it: an OpenAI-compatible server through the official client (openai_chat.py) and
a local causal language model through transformers (local.py). Prompting, structured-answer parsing,
retries and the circuit breaker live above them, in llm.py, so both behave the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.errors import DraftError

Chat = list[dict[str, str]]


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int


class TransientError(DraftError):
    """A failure worth retrying (429, 5xx, a dropped connection); `retry_after` is the server's wish, if any."""

    def __init__(self, message: str, *, kind: str, retry_after: float | None = None) -> None:
        super().__init__(message, kind=kind)
        self.retry_after = retry_after


class ChatBackend(Protocol):
    """A chat model. `complete` raises TransientError for what a retry may fix and DraftError otherwise."""

    name: str  # the provider, a metric label: "openai" or "transformers"
    max_concurrency: int  # calls in flight at once

    async def complete(self, chat: Chat, *, max_tokens: int, temperature: float) -> Completion: ...

    async def close(self) -> None: ...
