"""Intent, confidence, sentiment and risk flags for a batch of messages, from one embedding per message."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bot.classify.encoder import TransformersEncoder
from bot.classify.head import Head, trained
from bot.classify.risk import RiskDetector
from bot.models import Classification
from bot.policy.schema import BrandPolicy

UNKNOWN = "unknown"


class Classifier:
    """The trained intent and sentiment heads and the risk lexicon over a shared encoder.

    A prediction less confident than `unknown_below` comes out as the intent `unknown` (with its confidence),
    so a message that matches no intent well is not forced onto the nearest one.
    """

    def __init__(
        self,
        encoder: TransformersEncoder,
        head: Head,
        risk: RiskDetector,
        unknown_below: float = 0.0,
        sentiment: Head | None = None,
    ) -> None:
        self.encoder = encoder
        self.head = head
        self.risk = risk
        self.unknown_below = unknown_below
        self.sentiment = sentiment

    @classmethod
    def build(cls, encoder: TransformersEncoder, policy: BrandPolicy, cache_dir: Path) -> Classifier:
        """Train the heads on the policy's examples, or load the heads trained on the very same ones."""
        intents = [(name, text) for name, spec in policy.intents.intents.items() for text in spec.examples]
        feelings = [(str(name), text) for name, texts in policy.sentiment.sentiments.items() for text in texts]
        return cls(
            encoder,
            trained(cache_dir, "intent", encoder.fingerprint, intents, encoder.embed),
            RiskDetector(policy.risk),
            policy.intents.unknown_threshold,
            trained(cache_dir, "sentiment", encoder.fingerprint, feelings, encoder.embed),
        )

    async def classify_many(self, texts: Sequence[str]) -> tuple[list[Classification], np.ndarray]:
        """Classifications and the embeddings they came from (reused for knowledge retrieval)."""
        vectors = await self.encoder.aembed(texts)
        if not len(texts):
            return [], vectors
        predictions = self.head.predict(vectors)
        feelings = self.sentiment.predict(vectors) if self.sentiment else [(None, None)] * len(texts)
        results = [
            Classification(
                intent=intent if confidence >= self.unknown_below else UNKNOWN,
                confidence=confidence,
                sentiment=sentiment,
                sentiment_score=sentiment_score,
                risk_flags=self.risk.detect(text),
            )
            for text, (intent, confidence), (sentiment, sentiment_score) in zip(
                texts, predictions, feelings, strict=True
            )
        ]
        return results, vectors
