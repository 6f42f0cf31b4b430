"""The real all-MiniLM-L6-v2, loaded offline, with the head trained from policies/intents.yaml."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from bot.app import load_brand
from bot.classify import Classifier
from bot.classify.encoder import TransformersEncoder
from bot.classify.risk import RiskDetector
from bot.config import Settings


async def test_intents_and_risks_of_demo_messages(
    settings: Settings, encoder: TransformersEncoder, models_dir: Path
) -> None:
    classifier = Classifier.build(encoder, load_brand(settings).policy, models_dir)
    texts = [
        "how much is express delivery?",
        "what time does the Leeds store close on saturday",
        "can I pay with klarna",
        "my order NW-88812 never arrived and it's been 3 weeks",
        "I'll be reporting you to trading standards",
        "FOLLOW 4 FOLLOW!! free crypto signals in bio",
    ]
    results, vectors = await classifier.classify_many(texts)
    assert [r.intent for r in results] == [
        "delivery_info",
        "store_hours",
        "payment_info",
        "order_problem",
        "legal_threat",
        "spam",
    ]
    assert all(0 < r.confidence <= 1 for r in results)
    assert vectors.shape == (6, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert [r.risk_flags for r in results[:3]] == [(), (), ()]
    assert [(f.name, f.evidence.lower()) for f in results[4].risk_flags] == [("legal_threat", "trading standards")]
    assert "pii" in {f.name for f in results[3].risk_flags}  # an order number posted in the open


def test_trained_head_is_cached_by_examples(
    settings: Settings, encoder: TransformersEncoder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    policy = load_brand(settings).policy
    caplog.set_level(logging.INFO, logger="bot.classify")
    first = Classifier.build(encoder, policy, tmp_path)
    second = Classifier.build(encoder, policy, tmp_path)
    intent_records = [r.message for r in caplog.records if r.message.startswith("intent head")]
    assert ["trained" in message for message in intent_records] == [True, False]
    assert np.array_equal(first.head.weights, second.head.weights)
    changed = policy.model_copy(deep=True)
    changed.intents.intents["greeting"].examples.append("top of the morning to ye")
    Classifier.build(encoder, changed, tmp_path)
    intent_records = [r.message for r in caplog.records if r.message.startswith("intent head")]
    assert "trained" in intent_records[-1]  # different examples: trained again
    assert len(list(tmp_path.glob("intent-head-*.npz"))) == 2


@pytest.mark.parametrize(
    ("text", "evidence"),
    [
        ("my card is 4111 1111 1111 1111 can you check it", "card number ending 1111"),
        ("card: 5500-0000-0000-0004 was charged twice", "card number ending 0004"),
        ("378282246310005 is my amex", "card number ending 0005"),
        # 16 digits that fail the Luhn check are not a card (a tracking or order reference, say).
        ("parcel ref 1234 5678 9012 3456 still not here", None),
        ("4111 1111 1111 1112", None),
    ],
)
def test_card_numbers_need_a_luhn_check_and_are_masked(settings: Settings, text: str, evidence: str | None) -> None:
    detector = RiskDetector(load_brand(settings).policy.risk)
    cards = [f.evidence for f in detector.detect(text) if f.evidence.startswith("card number")]
    assert cards == ([evidence] if evidence else [])
    assert all("4111 1111" not in f.evidence and "5500" not in f.evidence for f in detector.detect(text))


async def test_concurrent_calls_share_model_runs(encoder: TransformersEncoder) -> None:
    class Counting(TransformersEncoder):
        runs = 0

        def embed(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
            Counting.runs += 1
            return super().embed(texts, batch_size)

    counting = Counting(encoder.path)
    texts = [f"where is my parcel number {i}?" for i in range(40)] + ["hi", "do you sell tents in bright orange?"]
    vectors = await asyncio.gather(*(counting.aembed([text]) for text in texts))
    counting.close()
    assert Counting.runs < len(texts) / 4  # batched, not one run per call
    expected = encoder.embed(texts)
    assert np.allclose(np.concatenate(vectors), expected, atol=1e-5)  # each caller got its own vector back


async def test_sentiment_reads_sarcasm_and_slang(
    settings: Settings, encoder: TransformersEncoder, models_dir: Path
) -> None:
    classifier = Classifier.build(encoder, load_brand(settings).policy, models_dir)
    texts = [
        "love how my parcel vanished AGAIN. great service as always",
        "these boots are killer, best pair I've owned",
        "what time do you close on saturday?",
    ]
    results, _ = await classifier.classify_many(texts)
    assert [r.sentiment for r in results] == ["negative", "positive", "neutral"]
    assert all(r.sentiment_score is not None and 1 / 3 < r.sentiment_score <= 1 for r in results)
    assert "violence_threat" not in {f.name for f in results[1].risk_flags}  # slang is not a threat
