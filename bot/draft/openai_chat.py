"""Any OpenAI-compatible chat-completions server (OpenAI, Azure OpenAI, vLLM, Ollama, llama.cpp) through the
official client. The client's own retries are off: llm.py retries, so that every attempt is counted and the
circuit breaker sees each failure."""

from __future__ import annotations

from typing import Any, Literal

import openai

from bot.draft.backend import Chat, Completion, TransientError
from bot.errors import DraftError
from bot.http import retry_after

JsonMode = Literal["json_schema", "json_object", "prompt"]

# What the model must answer; the system prompt says the same in words for servers without structured output.
ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "reply": {"type": "string"},
        "sources": {"type": "array", "items": {"type": "string"}},
        "answerable": {"type": "boolean"},
    },
    "required": ["reply", "sources", "answerable"],
    "additionalProperties": False,
}


def _wait(headers: Any) -> float | None:
    """What the server asks us to wait: OpenAI's `retry-after-ms`, else the standard Retry-After."""
    try:
        return max(0.0, float(headers.get("retry-after-ms")) / 1000)
    except (TypeError, ValueError):
        return retry_after(headers.get("retry-after"))


def response_format(mode: JsonMode) -> dict[str, Any] | None:
    if mode == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "draft", "strict": True, "schema": ANSWER_SCHEMA}}
    if mode == "json_object":
        return {"type": "json_object"}
    return None


class OpenAIChat:
    """One endpoint and model; maps the client's errors to TransientError (retry) or DraftError (give up)."""

    name = "openai"

    def __init__(self, client: openai.AsyncOpenAI, model: str, json_mode: JsonMode, max_concurrency: int) -> None:
        self._client = client
        self._model = model
        self._format = response_format(json_mode)
        self.max_concurrency = max_concurrency

    async def complete(self, chat: Chat, *, max_tokens: int, temperature: float) -> Completion:
        extra: dict[str, Any] = {"response_format": self._format} if self._format else {}
        try:
            response = await self._client.chat.completions.create(
                model=self._model,
                messages=chat,  # type: ignore[arg-type]
                temperature=temperature,
                max_tokens=max_tokens,
                **extra,
            )
        except openai.APITimeoutError as error:  # a slow model retried is a slower model: give up at once
            raise DraftError("language model timed out", kind="timeout") from error
        except openai.APIConnectionError as error:
            raise TransientError("language model unreachable", kind="unreachable") from error
        except openai.RateLimitError as error:
            wait = _wait(error.response.headers)
            raise TransientError("language model rate limit (429)", kind="rate_limited", retry_after=wait) from error
        except openai.InternalServerError as error:
            wait = _wait(error.response.headers)
            raise TransientError(
                f"language model server error ({error.status_code})", kind="server_error", retry_after=wait
            ) from error
        except openai.APIStatusError as error:  # 4xx: our request or our key is wrong; a retry won't help
            raise DraftError(f"language model refused the request ({error.status_code})", kind="refused") from error
        except openai.APIError as error:
            raise DraftError(f"language model request failed: {error.__class__.__name__}") from error
        text = (response.choices[0].message.content or "") if response.choices else ""
        usage = response.usage
        return Completion(text, usage.prompt_tokens if usage else 0, usage.completion_tokens if usage else 0)

    async def close(self) -> None:
        await self._client.close()
