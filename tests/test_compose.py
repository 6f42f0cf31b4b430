"""Drafting as the pipeline does it (retrieval, drafter, fallback, fit), with the real model: the offline
drafter answers the demo brand's FAQs with the right facts, and the `draft` command shows its work."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.app import build_composer, load_brand
from bot.classify import Classifier
from bot.classify.encoder import TransformersEncoder
from bot.config import Settings
from bot.metrics import create_metrics
from bot.models import Context
from tests.conftest import ROOT, message
from tests.fakes import FakeLLM

FAQS = [  # a customer's question, its intent, and the facts its answer must state
    ("how much is delivery and how long does it take?", "delivery_info", ["3–5 working days", "£50", "£4.95"]),
    ("what is your returns policy?", "returns_info", ["60 days", "northwind.example/returns"]),
    ("what time does the Leeds shop open on Sunday?", "store_hours", ["Sun 11:00–17:00", "Mon–Sat 9:00–18:00"]),
    ("do you take paypal or klarna?", "payment_info", ["PayPal", "Klarna", "Apple Pay"]),
    ("do your boots run small?", "sizing", ["half a size small", "northwind.example/sizes"]),
    ("the zip on my northwind jacket broke, can you fix it?", "repairs", ["northwind.example/repair"]),
    ("how do I track my parcel?", "tracking_howto", ["northwind.example/track", "postcode"]),
    ("how long is a gift card valid for?", "gift_cards", ["24 months"]),
]


@pytest.fixture(scope="module")
def classifier(encoder: TransformersEncoder, brand_models: Path) -> Classifier:
    return Classifier.build(encoder, load_brand(Settings(_env_file=None)).policy, brand_models)  # type: ignore[call-arg]


@pytest.mark.parametrize(("question", "intent", "facts"), FAQS)
async def test_the_offline_drafter_answers_each_faq_with_its_facts(
    question: str,
    intent: str,
    facts: list[str],
    settings: Settings,
    encoder: TransformersEncoder,
    classifier: Classifier,
) -> None:
    composer = build_composer(settings, load_brand(settings), encoder, None, create_metrics())
    [cls], [vector] = await classifier.classify_many([question])
    assert cls.intent == intent
    draft = await composer.draft(message(question, handle="jo"), cls, Context(), vector)
    assert draft.answerable and draft.drafter == "offline", draft.note
    assert all(fact in draft.text for fact in facts), draft.text
    assert draft.text.startswith("Hi @jo") and draft.text.endswith("– Northwind Team")
    assert set(draft.sources) <= set(draft.retrieved)  # the intent's own passages are always retrieved


async def test_an_x_reply_fits_280_characters_and_a_whatsapp_one_greets_no_handle(
    settings: Settings, encoder: TransformersEncoder, classifier: Classifier
) -> None:
    composer = build_composer(settings, load_brand(settings), encoder, None, create_metrics())
    question = "what are your store opening hours and can I phone you?"
    [cls], [vector] = await classifier.classify_many([question])
    on_x = await composer.draft(message(question, channel="x_mention", handle="jo"), cls, Context(), vector)
    on_whatsapp = await composer.draft(message(question, channel="whatsapp", handle="jo"), cls, Context(), vector)
    assert on_x.answerable and len(on_x.text) <= 280 and on_x.text.startswith("Hi @jo")
    assert on_whatsapp.text.startswith("Hi there") and "@jo" not in on_whatsapp.text


async def run_draft(*args: str, env: dict[str, str]) -> dict[str, Any]:
    """`python -m bot draft ... --json` in a process of its own (the fake model answers from this loop)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "draft",
        *args,
        "--json",
        cwd=ROOT,
        env=os.environ | {"HF_HUB_OFFLINE": "1"} | env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 300)
    assert process.returncode == 0, err.decode()
    return dict(json.loads(out.decode().strip().splitlines()[-1]))


async def test_the_draft_command_offline_and_through_a_model(
    tmp_path: Path, brand_models: Path, fake_llm: FakeLLM
) -> None:
    env = {"BOT_MODELS_DIR": str(brand_models), "BOT_DATA_DIR": str(tmp_path)}
    offline = await run_draft("Do you accept Apple Pay?", "--channel", "x_mention", "--handle", "jo", env=env)
    assert offline["intent"] == "payment_info" and offline["drafter"] == "offline" and offline["grounded"]
    assert "Apple Pay" in str(offline["draft"]) and offline["decision"] == "auto_send"
    assert "payment#accepted-payment-methods" in offline["passages"]
    env |= {"BOT_LLM_BASE_URL": await fake_llm.start(), "BOT_LLM_API_KEY": fake_llm.api_key}
    model = await run_draft("Do you accept Apple Pay?", env=env)
    assert model["drafter"] == "llm" and model["grounded"] and model["sources"] == [model["passages"][0]]
    assert len(fake_llm.requests) == 1
