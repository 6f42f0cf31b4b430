"""The real all-MiniLM-L6-v2, loaded offline, with the head trained from policies/intents.yaml."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from bot.app import load_brand
from bot.classify import Classifier
from bot.classify.encoder import TransformersEncoder
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
    assert ["trained" in r.message for r in caplog.records] == [True, False]
    assert np.array_equal(first.head.weights, second.head.weights)
    changed = policy.model_copy(deep=True)
    changed.intents.intents["greeting"].examples.append("top of the morning to ye")
    Classifier.build(encoder, changed, tmp_path)
    assert "trained" in caplog.records[-1].message  # different examples: trained again
    assert len(list(tmp_path.glob("intent-head-*.npz"))) == 2
