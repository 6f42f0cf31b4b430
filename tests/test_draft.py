"""Drafting through the real openai client against a fake OpenAI-compatible server: the prompt, the
structured answer, and each way the model can fail (malformed, slow, 429, 500, down for good)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from bot.app import load_brand, open_backend
from bot.config import Settings
from bot.draft.breaker import CircuitBreaker, State
from bot.draft.llm import LLMDrafter, parse_answer
from bot.errors import DraftError
from bot.metrics import Metrics, create_metrics
from bot.models import Classification, Context, Turn
from tests.conftest import message
from tests.fakes import FakeLLM

DELIVERY = Classification(intent="delivery_info", confidence=0.9)
QUESTION = "How long does delivery take?"


@pytest.fixture
async def make_drafter(make_settings: Callable[..., Settings], fake_llm: FakeLLM) -> AsyncIterator[Callable[..., Any]]:
    """An LLMDrafter on the fake server, built as the service builds it; settings overridable per test."""
    url = await fake_llm.start()
    made: list[LLMDrafter] = []

    async def make(**overrides: Any) -> LLMDrafter:
        values = {"llm_base_url": url, "llm_api_key": fake_llm.api_key, "llm_model": "test-model"}
        values |= {"llm_backoff_s": 0.01, "llm_timeout": 5} | overrides
        settings = make_settings(**values)
        backend = await open_backend(settings)
        assert backend is not None
        breaker = CircuitBreaker(settings.llm_breaker_failures, settings.llm_breaker_cooldown_s)
        drafter = LLMDrafter(backend, load_brand(settings).prompts, create_metrics(), settings, breaker)
        made.append(drafter)
        return drafter

    yield make
    for drafter in made:
        await drafter.backend.close()


def delivery_passages(settings: Settings) -> list[Any]:
    return [p for p in load_brand(settings).passages if p.id.startswith("delivery#")][:2]


def counted(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def test_the_prompt_holds_persona_passages_guidance_and_the_last_turns(
    make_drafter: Callable[..., Any], fake_llm: FakeLLM, settings: Settings
) -> None:
    llm = await make_drafter(llm_history_turns=2, llm_price_prompt=2.0, llm_price_completion=8.0)
    passages = delivery_passages(settings)
    at = message("x").created_at
    turns = tuple(Turn(role=r, text=f"turn {i}", at=at) for i, r in enumerate(["customer", "brand"] * 2))
    problem = Classification(intent="order_problem", confidence=0.9)
    draft = await llm.draft(message(QUESTION, handle="jo_walks"), problem, Context(turns=turns), passages)
    assert draft.answerable and draft.drafter == "llm" and draft.sources == (passages[0].id,)
    assert draft.text.startswith("Hi @jo_walks, ") and passages[0].text.split(".")[0][1:] in draft.text
    [request] = fake_llm.requests
    assert request["model"] == "test-model" and request["max_tokens"] == 300
    assert request["response_format"]["json_schema"]["schema"]["required"] == ["reply", "sources", "answerable"]
    chat = request["messages"]
    assert [m["role"] for m in chat] == ["system", "user", "assistant", "user"]
    assert [m["content"] for m in chat[1:3]] == ["turn 2", "turn 3"]  # only the last two turns
    system = chat[0]["content"]
    assert "Northwind Team" in system and "British spelling" in system and "valued customer" in system  # persona
    assert all(f"[{p.id}]" in system and p.text in system for p in passages)  # the knowledge
    assert "can't see orders" in system  # prompts/guidance/order_problem.md
    assert "Address the customer as @jo_walks." in system
    assert QUESTION in chat[-1]["content"]
    metrics = llm._metrics
    prompt_tokens = counted(metrics, "autoresponder_llm_tokens_total", kind="prompt")
    assert prompt_tokens > 100 and counted(metrics, "autoresponder_llm_tokens_total", kind="completion") == 20
    expected = (prompt_tokens * 2.0 + 20 * 8.0) / 1e6
    assert counted(metrics, "autoresponder_llm_cost_total") == pytest.approx(expected)
    assert metrics.registry.get_sample_value("autoresponder_llm_request_duration_seconds_count") == 1


async def test_json_mode_prompt_sends_no_response_format(make_drafter: Callable[..., Any], fake_llm: FakeLLM) -> None:
    llm = await make_drafter(llm_json_mode="prompt")
    await llm.draft(message(QUESTION), DELIVERY, Context(), [])
    assert "response_format" not in fake_llm.requests[0]


async def test_a_malformed_answer_is_asked_for_once_more(make_drafter: Callable[..., Any], fake_llm: FakeLLM) -> None:
    llm = await make_drafter()
    fake_llm.script = ["malformed"]
    recovered = await llm.draft(message(QUESTION), DELIVERY, Context(), delivery_passages(llm._settings))
    assert recovered.answerable and len(fake_llm.requests) == 2
    fake_llm.mode = "malformed"
    failed = await llm.draft(message(QUESTION), DELIVERY, Context(), [])
    assert len(fake_llm.requests) == 4
    assert not failed.answerable and failed.note == "malformed model answer"
    assert llm.breaker.state is State.CLOSED  # the endpoint works; the model answered badly
    assert counted(llm._metrics, "autoresponder_llm_requests_total", outcome="malformed") == 3


def test_parse_answer_tolerates_fences_and_words_but_not_a_wrong_shape() -> None:
    fenced = 'Here you go:\n```json\n{"reply": "Hi {there}", "sources": ["a#b"], "answerable": true}\n```\nBye'
    assert parse_answer(fenced) is not None and parse_answer(fenced).reply == "Hi {there}"  # type: ignore[union-attr]
    assert parse_answer('{"reply": "Hi"}') is None  # answerable missing
    assert parse_answer('{"reply": "Hi", "answerable": "maybe"}') is None
    assert parse_answer("no json here") is None


async def test_a_slow_model_times_out_without_a_retry(make_drafter: Callable[..., Any], fake_llm: FakeLLM) -> None:
    llm = await make_drafter(llm_timeout=0.3)
    fake_llm.mode, fake_llm.slow_s = "slow", 5
    with pytest.raises(DraftError) as raised:
        await llm.draft(message(QUESTION), DELIVERY, Context(), [])
    assert raised.value.kind == "timeout" and len(fake_llm.requests) == 1
    assert counted(llm._metrics, "autoresponder_llm_requests_total", outcome="timeout") == 1


async def test_429_is_retried_after_its_retry_after(make_drafter: Callable[..., Any], fake_llm: FakeLLM) -> None:
    llm = await make_drafter()
    fake_llm.script, fake_llm.retry_after = ["429"], "1"
    started = time.monotonic()
    draft = await llm.draft(message(QUESTION), DELIVERY, Context(), delivery_passages(llm._settings))
    assert draft.answerable and len(fake_llm.requests) == 2
    assert time.monotonic() - started >= 0.9  # it waited as asked, not the 10 ms backoff
    assert counted(llm._metrics, "autoresponder_llm_requests_total", outcome="rate_limited") == 1


async def test_a_long_retry_after_opens_the_circuit_instead_of_waiting(
    make_drafter: Callable[..., Any], fake_llm: FakeLLM
) -> None:
    llm = await make_drafter(llm_max_retry_wait_s=2)
    fake_llm.script, fake_llm.retry_after = ["429"], "120"
    started = time.monotonic()
    with pytest.raises(DraftError, match="429"):
        await llm.draft(message(QUESTION), DELIVERY, Context(), [])
    assert time.monotonic() - started < 2 and len(fake_llm.requests) == 1
    assert llm.breaker.state is State.OPEN  # for the 120 s the server asked for
    with pytest.raises(DraftError, match="circuit open"):
        await llm.draft(message(QUESTION), DELIVERY, Context(), [])
    assert len(fake_llm.requests) == 1  # refused without asking


async def test_server_errors_are_retried_with_backoff_then_given_up(
    make_drafter: Callable[..., Any], fake_llm: FakeLLM
) -> None:
    llm = await make_drafter(llm_retries=2)
    fake_llm.script = ["500", "503"]
    assert (await llm.draft(message(QUESTION), DELIVERY, Context(), [])).drafter == "llm"
    assert len(fake_llm.requests) == 3  # two failures, then the answer
    fake_llm.mode = "500"
    with pytest.raises(DraftError) as raised:
        await llm.draft(message(QUESTION), DELIVERY, Context(), [])
    assert raised.value.kind == "server_error" and len(fake_llm.requests) == 6
    assert counted(llm._metrics, "autoresponder_llm_requests_total", outcome="server_error") == 5


async def test_the_circuit_opens_after_repeated_failures_and_a_probe_closes_it(
    make_drafter: Callable[..., Any], fake_llm: FakeLLM
) -> None:
    llm = await make_drafter(llm_retries=0, llm_breaker_failures=3, llm_breaker_cooldown_s=0.5)
    fake_llm.mode = "500"
    for _ in range(3):
        with pytest.raises(DraftError, match="server error"):
            await llm.draft(message(QUESTION), DELIVERY, Context(), [])
    assert llm.breaker.state is State.OPEN and len(fake_llm.requests) == 3
    with pytest.raises(DraftError, match="circuit open"):
        await llm.draft(message(QUESTION), DELIVERY, Context(), [])
    assert len(fake_llm.requests) == 3
    fake_llm.mode = "ok"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and llm.breaker.state is State.OPEN:
        try:
            await llm.draft(message(QUESTION), DELIVERY, Context(), [])
        except DraftError:
            await asyncio.sleep(0.1)
    assert llm.breaker.state is State.CLOSED and len(fake_llm.requests) == 4  # one probe, then closed


async def test_a_wrong_key_is_refused_without_retries(make_drafter: Callable[..., Any], fake_llm: FakeLLM) -> None:
    llm = await make_drafter(llm_api_key="wrong-key")
    with pytest.raises(DraftError) as raised:
        await llm.draft(message(QUESTION), DELIVERY, Context(), [])
    assert raised.value.kind == "refused" and not fake_llm.requests


async def test_no_more_calls_are_in_flight_than_the_endpoint_allows(
    make_drafter: Callable[..., Any], fake_llm: FakeLLM
) -> None:
    llm = await make_drafter(llm_max_concurrency=2)
    fake_llm.delay = 0.2
    drafts = await asyncio.gather(*(llm.draft(message(QUESTION), DELIVERY, Context(), []) for _ in range(6)))
    assert len(drafts) == 6 and len(fake_llm.requests) == 6 and fake_llm.most_in_flight == 2
