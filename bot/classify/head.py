"""A softmax head (multinomial logistic regression) on sentence vectors (the tuned intent vectors for intents,
the general ones for sentiment): trained from the policy's examples at start and cached on disk keyed by
(examples, encoder), so a restart does not retrain."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bot.classify import cache

logger = logging.getLogger(__name__)

L2 = 1e-3
STEPS = 200


@dataclass(frozen=True)
class Head:
    labels: tuple[str, ...]
    weights: np.ndarray  # (dimension, n_labels)
    bias: np.ndarray  # (n_labels,)

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        logits = vectors @ self.weights + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def best(self, probs: np.ndarray) -> list[tuple[str, float]]:
        """The most probable label of each row of `probabilities()`, with its probability."""
        best = probs.argmax(axis=1)
        return [(self.labels[i], float(probs[row, i])) for row, i in enumerate(best)]


def train_head(vectors: np.ndarray, labels: list[str]) -> Head:
    """Fit softmax regression with L-BFGS; deterministic for the same input."""
    names = tuple(sorted(set(labels)))
    index = {name: i for i, name in enumerate(names)}
    x = torch.from_numpy(vectors.astype(np.float32))
    y = torch.tensor([index[label] for label in labels])
    torch.manual_seed(0)
    layer = torch.nn.Linear(x.shape[1], len(names))
    torch.nn.init.zeros_(layer.weight)
    torch.nn.init.zeros_(layer.bias)
    optimiser = torch.optim.LBFGS(layer.parameters(), lr=1.0, max_iter=STEPS, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        # Unit-length vectors give tiny logits; scaling them lets the head reach confident probabilities.
        loss = torch.nn.functional.cross_entropy(layer(x * 10), y) + L2 * layer.weight.pow(2).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    with torch.no_grad():
        weights = (layer.weight.T * 10).numpy().copy()
        bias = layer.bias.numpy().copy()
    return Head(names, weights, bias)


def trained(
    cache_dir: Path,
    kind: str,
    encoder_fingerprint: str,
    examples: list[tuple[str, str]],
    vectors: Callable[[list[str]], np.ndarray],
) -> Head:
    """The head for these (label, text) examples: from the cache, or trained now and cached."""
    key = cache.key(encoder_fingerprint, L2, STEPS, sorted(examples))
    path = cache_dir / f"{kind}-head-{key}.npz"
    saved = cache.load(path)
    if saved is not None:
        logger.info("%s head loaded from cache key=%s", kind, key)
        return Head(tuple(str(label) for label in saved["labels"]), saved["weights"], saved["bias"])
    head = train_head(vectors([text for _, text in examples]), [label for label, _ in examples])
    cache.save(path, labels=np.array(head.labels), weights=head.weights, bias=head.bias)
    logger.info("%s head trained labels=%d examples=%d key=%s", kind, len(head.labels), len(examples), key)
    return head
