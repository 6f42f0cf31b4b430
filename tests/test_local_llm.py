"""The transformers backend on tiny chat models built on the spot: no download, a few seconds in all."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.app import load_brand, open_backend
from bot.classify.encoder import default_model_path
from bot.config import Settings
from bot.draft.backend import Chat, TransientError
from bot.draft.breaker import CircuitBreaker
from bot.draft.llm import LLMDrafter
from bot.draft.local import TransformersBackend
from bot.errors import ConfigError, DraftError
from bot.metrics import create_metrics
from bot.models import Classification, Context
from tests.conftest import message
from tests.tiny_llm import build_tiny_chat_model

ANSWER = '{"reply": "Hi", "sources": [], "answerable": false}'
# Unlike the chats the answering model was trained on: what it learnt must hold for any prompt.
CHAT: Chat = [
    {"role": "system", "content": "You answer for an outdoor clothing shop ."},
    {"role": "user", "content": "My boots leaked after a week , what now ?"},
    {"role": "assistant", "content": "Sorry to hear that ! Which boots ?"},
    {"role": "user", "content": "The brown ones"},
]


@pytest.fixture(scope="module")
def random_model(tmp_path_factory: pytest.TempPathFactory) -> TransformersBackend:
    return TransformersBackend.load(build_tiny_chat_model(tmp_path_factory.mktemp("random")))


@pytest.fixture(scope="module")
def answering_model(tmp_path_factory: pytest.TempPathFactory) -> TransformersBackend:
    return TransformersBackend.load(build_tiny_chat_model(tmp_path_factory.mktemp("answering"), answer=ANSWER))


async def test_the_chat_goes_through_the_template_and_tokens_are_counted(random_model: TransformersBackend) -> None:
    completion = await random_model.complete(CHAT, max_tokens=6, temperature=0.8)
    # The template: <s>, then per message a role token, its words and </s>, then <|assistant|> to answer.
    assert completion.prompt_tokens == 2 + sum(2 + len(m["content"].split()) for m in CHAT)
    assert 0 < completion.completion_tokens <= 6
    assert isinstance(completion.text, str)
    assert random_model.name == "transformers" and random_model.max_concurrency == 1


async def test_greedy_decoding_gives_the_trained_answer(answering_model: TransformersBackend) -> None:
    other: Chat = [{"role": "user", "content": "Where is my parcel ?"}]
    first, second = await asyncio.gather(  # the lock takes them one at a time
        answering_model.complete(CHAT, max_tokens=20, temperature=0),
        answering_model.complete(other, max_tokens=20, temperature=0),
    )
    assert first.text == ANSWER and second.text == ANSWER
    assert first.completion_tokens == 2  # the answer's one token, then end of sequence
    await answering_model.close()


async def test_a_generation_failure_is_a_draft_error_not_worth_retrying(random_model: TransformersBackend) -> None:
    with pytest.raises(DraftError) as caught:
        await random_model.complete(CHAT, max_tokens=0, temperature=0)  # generate() refuses 0 new tokens
    assert not isinstance(caught.value, TransientError)


@pytest.mark.parametrize(
    ("make_folder", "reason"),
    [
        (lambda tmp: tmp / "missing", "not found"),
        (lambda tmp: tmp, "not a causal language model"),
        (lambda tmp: default_model_path(), "no chat template"),  # the intent encoder: a model, but no chat one
    ],
    ids=["missing", "not-a-model", "no-chat-template"],
)
def test_a_folder_that_is_not_a_chat_model_is_a_config_error(
    tmp_path: Path, make_folder: Callable[[Path], Path], reason: str
) -> None:
    (tmp_path / "notes.txt").write_text("not a model")
    folder = make_folder(tmp_path)
    with pytest.raises(ConfigError, match=reason) as caught:
        TransformersBackend.load(folder)
    assert str(folder) in str(caught.value)


async def test_the_service_drafts_with_a_local_model_as_with_a_server(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    """BOT_LLM_PROVIDER=transformers: the same prompt and structured-answer handling as an endpoint."""
    source = "delivery#standard-uk-delivery"
    answer = {"reply": "Hi there, UK delivery takes 3–5 working days. – Northwind Team", "sources": [source]}
    folder = build_tiny_chat_model(tmp_path / "model", answer=json.dumps(answer | {"answerable": True}))
    settings = make_settings(llm_provider="transformers", llm_model=str(folder), llm_temperature=0)
    backend = await open_backend(settings)
    assert isinstance(backend, TransformersBackend)
    brand = load_brand(settings)
    drafter = LLMDrafter(backend, brand.prompts, create_metrics(), settings, CircuitBreaker(5, 30))
    passages = [p for p in brand.passages if p.id == source]
    delivery = Classification(intent="delivery_info", confidence=0.9)
    draft = await drafter.draft(message("how long is delivery?"), delivery, Context(), passages)
    assert draft.answerable and draft.drafter == "llm" and draft.sources == (source,) and "3–5" in draft.text

    random = make_settings(llm_provider="transformers", llm_model=str(build_tiny_chat_model(tmp_path / "random")))
    babbler = LLMDrafter(
        TransformersBackend.load(Path(random.llm_model)), brand.prompts, create_metrics(), random, CircuitBreaker(5, 30)
    )
    babble = await babbler.draft(message("how long is delivery?"), delivery, Context(), passages)
    assert not babble.answerable and babble.note == "malformed model answer"  # asked twice, no JSON either time
