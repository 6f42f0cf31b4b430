"""Intent, confidence, sentiment and risk flags for a batch of messages, from one embedding per message."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bot.classify.encoder import TransformersEncoder
from bot.classify.head import Head, trained
from bot.classify.neighbours import IntentModel, example_vectors, intent_model
from bot.classify.risk import RiskDetector
from bot.models import Classification
from bot.policy.schema import BrandPolicy

UNKNOWN = "unknown"
# Texts x examples above which the neighbours' vote goes to a thread: about 2 ms of matrix products. Below it
# the thread's hand-over would cost more than the vote (a few texts against a few hundred examples).
INLINE_VOTE = 100_000


def vote_off_loop(texts: int, examples: int) -> bool:
    """Whether the intent model's vote over `examples` for `texts` is large enough to keep off the event loop
    (a Banking77-sized brand's batch of 256 takes ~40 ms there, which would stall every other request)."""
    return texts * examples > INLINE_VOTE


def _examples(policy: BrandPolicy) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(intent, text) and (sentiment, text) pairs: what the heads train on."""
    intents = [(name, text) for name, spec in policy.intents.intents.items() for text in spec.examples]
    feelings = [(str(name), text) for name, texts in policy.sentiment.sentiments.items() for text in texts]
    return intents, feelings


class Classifier:
    """The intent model (head and nearest examples), the sentiment head and the risk lexicon over a shared
    encoder.

    A prediction less confident than `unknown_below` comes out as the intent `unknown` (with its confidence),
    so a message that matches no intent well is not forced onto the nearest one.
    """

    def __init__(
        self,
        encoder: TransformersEncoder,
        intents: IntentModel,
        risk: RiskDetector,
        unknown_below: float = 0.0,
        sentiment: Head | None = None,
        trained_on: object = None,
    ) -> None:
        self.encoder = encoder
        self.intents = intents
        self.risk = risk
        self.unknown_below = unknown_below
        self.sentiment = sentiment
        self.trained_on = trained_on  # the examples of the heads, to tell whether a new policy changed them

    @classmethod
    def build(
        cls, encoder: TransformersEncoder, policy: BrandPolicy, cache_dir: Path, tuned_layers: int = 0
    ) -> Classifier:
        """Tune the encoder's top layers, embed the policy's examples and train the heads on them, or load what
        was tuned, embedded and trained from the very same ones (and the same encoder and settings) before."""
        intents, feelings = _examples(policy)
        encoder.tune_top(tuned_layers, intents, cache_dir)
        tuned = encoder.intent_fingerprint
        vectors = example_vectors(cache_dir, tuned, intents, encoder.embed)
        head = trained(cache_dir, "intent", tuned, intents, lambda _: vectors.intent)  # the examples' own order
        return cls(
            encoder,
            intent_model(head, vectors, [label for label, _ in intents]),
            RiskDetector(policy.risk, head.labels),
            policy.intents.unknown_threshold,
            trained(cache_dir, "sentiment", encoder.fingerprint, feelings, lambda texts: encoder.embed(texts).general),
            (intents, feelings),
        )

    def adopt(self, policy: BrandPolicy) -> bool:
        """Take a reloaded policy's risk lexicon and unknown threshold at once. The heads stay as trained:
        False when the policy's examples differ from theirs (retraining waits for `train` and a restart)."""
        self.risk = RiskDetector(policy.risk, self.intents.labels)
        self.unknown_below = policy.intents.unknown_threshold
        return _examples(policy) == self.trained_on

    async def classify_many(self, texts: Sequence[str]) -> tuple[list[Classification], np.ndarray]:
        """Classifications and the general vectors of the texts (reused for knowledge retrieval)."""
        vectors = await self.encoder.aembed(texts)
        if not len(texts):
            return [], vectors.general
        if vote_off_loop(len(texts), self.intents.examples):
            probabilities = await asyncio.to_thread(self.intents.probabilities, vectors)
        else:
            probabilities = self.intents.probabilities(vectors)
        predictions = self.intents.best(probabilities)
        feelings = self.sentiment.predict(vectors.general) if self.sentiment else [(None, None)] * len(texts)
        results = [
            Classification(
                intent=intent if confidence >= self.unknown_below else UNKNOWN,
                confidence=confidence,
                sentiment=sentiment,
                sentiment_score=sentiment_score,
                risk_flags=self.risk.detect(text, row),
            )
            for text, row, (intent, confidence), (sentiment, sentiment_score) in zip(
                texts, probabilities, predictions, feelings, strict=True
            )
        ]
        return results, vectors.general
