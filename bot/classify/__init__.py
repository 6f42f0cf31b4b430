"""Intent, confidence and risk flags for a batch of messages, from one embedding per message."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bot.classify.encoder import TransformersEncoder
from bot.classify.intent import IntentHead, cache_key, load_cached, save_cached, train_head
from bot.classify.risk import RiskDetector
from bot.models import Classification
from bot.policy.schema import BrandPolicy

logger = logging.getLogger(__name__)

UNKNOWN = "unknown"


class Classifier:
    """The trained intent head and the risk lexicon over a shared encoder.

    A prediction less confident than `unknown_below` comes out as the intent `unknown` (with its confidence),
    so a message that matches no intent well is not forced onto the nearest one.
    """

    def __init__(
        self, encoder: TransformersEncoder, head: IntentHead, risk: RiskDetector, unknown_below: float = 0.0
    ) -> None:
        self.encoder = encoder
        self.head = head
        self.risk = risk
        self.unknown_below = unknown_below

    @classmethod
    def build(cls, encoder: TransformersEncoder, policy: BrandPolicy, cache_dir: Path) -> Classifier:
        """Train the head on the policy's examples, or load the head trained on the very same ones."""
        examples = [(name, text) for name, spec in policy.intents.intents.items() for text in spec.examples]
        key = cache_key(encoder.fingerprint, examples)
        head = load_cached(cache_dir, key)
        if head is None:
            vectors = encoder.embed([text for _, text in examples])
            head = train_head(vectors, [name for name, _ in examples])
            save_cached(cache_dir, key, head)
            logger.info("intent head trained intents=%d examples=%d key=%s", len(head.labels), len(examples), key)
        else:
            logger.info("intent head loaded from cache key=%s", key)
        return cls(encoder, head, RiskDetector(policy.risk), policy.intents.unknown_threshold)

    async def classify_many(self, texts: Sequence[str]) -> tuple[list[Classification], np.ndarray]:
        """Classifications and the embeddings they came from (reused for knowledge retrieval)."""
        vectors = await self.encoder.aembed(texts)
        predictions = self.head.predict(vectors) if len(texts) else []
        results = [
            Classification(
                intent=intent if confidence >= self.unknown_below else UNKNOWN,
                confidence=confidence,
                risk_flags=self.risk.detect(text),
            )
            for text, (intent, confidence) in zip(texts, predictions, strict=True)
        ]
        return results, vectors
