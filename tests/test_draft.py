"""Drafting: the real openai client against a fake OpenAI-compatible server, and the offline drafter."""

from __future__ import annotations

import shutil
from pathlib import Path

import openai
import pytest

from bot.app import load_brand
from bot.config import Settings
from bot.draft.knowledge import load_knowledge
from bot.draft.llm import LLMDrafter
from bot.draft.offline import OfflineDrafter, load_answers
from bot.errors import ConfigError, DraftError
from bot.metrics import create_metrics
from bot.models import Classification, Context, Turn
from tests.conftest import ROOT, message
from tests.fakes import FakeLLM

DELIVERY = Classification(intent="delivery_info", confidence=0.9)


async def drafter(settings: Settings, fake_llm: FakeLLM) -> tuple[LLMDrafter, openai.AsyncOpenAI]:
    url = await fake_llm.start()
    client = openai.AsyncOpenAI(
        base_url=url, api_key=fake_llm.api_key, max_retries=0, timeout=5, http_client=openai.DefaultAioHttpClient()
    )
    brand = load_brand(settings)
    return LLMDrafter(
        client,
        brand.prompts,
        create_metrics(),
        model="test-model",
        temperature=0.2,
        max_tokens=200,
        max_concurrency=4,
        max_chars={"generic": 1000},
    ), client


async def test_llm_draft_is_grounded_in_the_prompt_it_was_given(settings: Settings, fake_llm: FakeLLM) -> None:
    llm, client = await drafter(settings, fake_llm)
    passages = [p for p in load_brand(settings).passages if p.id.startswith("delivery#")][:2]
    history = Context(
        turns=(
            Turn(role="customer", text="hello?", at=message("x").created_at),
            Turn(role="brand", text="Hi! How can we help? – Northwind Team", at=message("x").created_at),
        )
    )
    draft = await llm.draft(message("How long does delivery take?", handle="jo_walks"), DELIVERY, history, passages)
    await client.close()
    assert draft.answerable and draft.drafter == "llm"
    assert draft.sources == (passages[0].id,)
    [request] = fake_llm.requests
    assert request["model"] == "test-model" and request["temperature"] == 0.2 and request["max_tokens"] == 200
    roles = [m["role"] for m in request["messages"]]
    assert roles == ["system", "user", "assistant", "user"]  # the conversation so far comes along
    system = request["messages"][0]["content"]
    assert "Northwind Team" in system and "British spelling" in system  # persona
    assert all(f"[{p.id}]" in system and p.text in system for p in passages)  # knowledge
    assert "How long does delivery take?" in request["messages"][-1]["content"]
    assert "@jo_walks" in system


async def test_malformed_answer_is_retried_once_then_not_answerable(settings: Settings, fake_llm: FakeLLM) -> None:
    fake_llm.malformed = True
    llm, client = await drafter(settings, fake_llm)
    draft = await llm.draft(message("How long does delivery take?"), DELIVERY, Context(), [])
    await client.close()
    assert len(fake_llm.requests) == 2
    assert not draft.answerable and draft.note == "malformed model answer"


async def test_server_errors_become_draft_errors(settings: Settings, fake_llm: FakeLLM) -> None:
    fake_llm.fail_status = 500
    llm, client = await drafter(settings, fake_llm)
    with pytest.raises(DraftError):
        await llm.draft(message("How long does delivery take?"), DELIVERY, Context(), [])
    await client.close()


async def test_offline_drafter_answers_only_what_it_has_grounded(settings: Settings) -> None:
    brand = load_brand(settings)
    offline = OfflineDrafter(brand.answers, brand.prompts.persona)
    draft = await offline.draft(message("delivery?", handle="@jo"), DELIVERY, Context(), [])
    assert draft.answerable and draft.text.startswith("Hi @jo") and draft.text.endswith("– Northwind Team")
    assert draft.sources and all(s.startswith("delivery#") for s in draft.sources)
    refused = await offline.draft(
        message("my order is late"), Classification(intent="order_problem", confidence=0.9), Context(), []
    )
    assert not refused.answerable and refused.text == ""


def test_an_answer_with_an_invented_number_fails_at_start(tmp_path: Path, settings: Settings) -> None:
    answers = tmp_path / "answers"
    shutil.copytree(ROOT / "prompts" / "answers", answers)
    (answers / "delivery_info.yaml").write_text(
        "sources: [delivery#standard-uk-delivery]\ntext: Delivery takes 2 days and costs £1.99. {{ sign_off }}\n"
    )
    brand = load_brand(settings)
    passages = {p.id: p for p in load_knowledge(ROOT / "prompts" / "knowledge")}
    with pytest.raises(ConfigError, match=r"delivery_info.yaml: numbers not found .*'1.99', '2'"):
        load_answers(answers, set(brand.policy.intents.intents), passages, brand.prompts.persona)
    (answers / "delivery_info.yaml").write_text("sources: [delivery#nowhere]\ntext: Hi\n")
    with pytest.raises(ConfigError, match="sources not in the knowledge base"):
        load_answers(answers, set(brand.policy.intents.intents), passages, brand.prompts.persona)
