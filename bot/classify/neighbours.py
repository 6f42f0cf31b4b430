"""The intent model: the trained head's probabilities blended with a vote of the nearest training examples.

A linear head draws one boundary per intent; where two intents' examples interleave (Banking77's declined
transfer vs failed transfer), the nearest examples often know better. Neighbours are looked up twice: by the
tuned intent vector, which separates the brand's intents, and by the general vector, which still holds what
tuning discarded. On Banking77 (a held-out fifth of its train file) the model scores 0.9359 against the
head's 0.9284. The weights and temperatures were chosen on a validation split carved from the training part,
never on the held-out one; `NEAR` on the demo brand's out-of-scope calibration (README, Classification).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.classify import cache
from bot.classify.encoder import Embeddings
from bot.classify.head import Head, train_head

K = 5
HEAD_WEIGHT = 0.7
INTENT_WEIGHT, INTENT_TEMPERATURE = 0.1, 0.1  # neighbours by the tuned vector
GENERAL_WEIGHT, GENERAL_TEMPERATURE = 0.2, 0.05  # neighbours by the general vector
NEAR = 0.5  # a stand-in neighbour this similar takes its share of each vote back to the head


@dataclass(frozen=True)
class Neighbours:
    """Training examples' unit vectors and label indices: a vote of the `K` nearest, weighted by a softmax of
    their cosine similarity at `temperature`, with a stand-in at similarity `NEAR` whose share the vote leaves
    to the head. Neighbours that are not near (a message unlike every example) so have little say, and the
    vote does not make an out-of-scope message look surer than the head alone finds it."""

    vectors: np.ndarray  # (examples, dimension), unit rows
    targets: np.ndarray  # (examples,) label index
    n_labels: int
    temperature: float

    def votes(self, queries: np.ndarray) -> np.ndarray:
        """One row per query over `n_labels`, summing to the share the neighbours claim (below 1)."""
        k = min(K, len(self.targets))
        similarity = queries @ self.vectors.T
        nearest = np.argpartition(similarity, -k, axis=1)[:, -k:]
        closeness = np.take_along_axis(similarity, nearest, axis=1)
        top = np.maximum(closeness.max(axis=1, keepdims=True), NEAR)  # subtracted before exp: no overflow
        weights = np.exp((closeness - top) / self.temperature)
        weights /= (weights.sum(axis=1) + np.exp((NEAR - top[:, 0]) / self.temperature))[:, None]
        votes = np.zeros((len(queries), self.n_labels), dtype=np.float64)
        np.add.at(votes, (np.arange(len(queries))[:, None], self.targets[nearest]), weights)
        return votes


@dataclass(frozen=True)
class IntentModel:
    """The head and the two neighbour votes over the same labels (the head's, sorted)."""

    head: Head
    by_intent: Neighbours
    by_general: Neighbours

    @property
    def labels(self) -> tuple[str, ...]:
        return self.head.labels

    @property
    def examples(self) -> int:
        return len(self.by_intent.targets)

    def probabilities(self, vectors: Embeddings) -> np.ndarray:
        """One row per text, over `labels`, summing to 1: what the votes leave goes to the head."""
        by_intent, by_general = self.by_intent.votes(vectors.intent), self.by_general.votes(vectors.general)
        left = HEAD_WEIGHT + INTENT_WEIGHT * (1 - by_intent.sum(axis=1)) + GENERAL_WEIGHT * (1 - by_general.sum(axis=1))
        return (
            left[:, None] * self.head.probabilities(vectors.intent)
            + INTENT_WEIGHT * by_intent
            + GENERAL_WEIGHT * by_general
        )

    def best(self, probabilities: np.ndarray) -> list[tuple[str, float]]:
        return self.head.best(probabilities)


def intent_model(head: Head, examples: Embeddings, labels: Sequence[str]) -> IntentModel:
    """The intent model of a trained head and its training examples' vectors and labels."""
    index = {label: i for i, label in enumerate(head.labels)}
    targets = np.array([index[label] for label in labels])
    return IntentModel(
        head,
        Neighbours(examples.intent, targets, len(head.labels), INTENT_TEMPERATURE),
        Neighbours(examples.general, targets, len(head.labels), GENERAL_TEMPERATURE),
    )


def fit(examples: Embeddings, labels: Sequence[str]) -> IntentModel:
    """Train the head on the examples' intent vectors and index them: what the service builds at start."""
    return intent_model(train_head(examples.intent, list(labels)), examples, labels)


def example_vectors(
    cache_dir: Path,
    encoder_fingerprint: str,
    examples: Sequence[tuple[str, str]],
    embed: Callable[[list[str]], Embeddings],
) -> Embeddings:
    """The (label, text) examples' vectors in their order, for the head and the neighbours: from the cache, or
    embedded now and cached (a brand with thousands of examples would otherwise wait for them at every start)."""
    path = cache_dir / f"intent-examples-{cache.key(encoder_fingerprint, list(examples))}.npz"
    saved = cache.load(path)
    if saved is not None:
        return Embeddings(saved["general"], saved["intent"])
    vectors = embed([text for _, text in examples])
    cache.save(path, general=vectors.general, intent=vectors.intent)
    return vectors
