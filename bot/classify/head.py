"""A softmax head (multinomial logistic regression) on sentence vectors (the tuned intent vectors for intents,
the general ones for sentiment): trained from the policy's examples at start and cached on disk keyed by
(examples, encoder), so a restart does not retrain."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

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

    def predict(self, vectors: np.ndarray) -> list[tuple[str, float]]:
        return self.best(self.probabilities(vectors))

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
    key = cache_key(encoder_fingerprint, examples)
    head = load_cached(cache_dir, kind, key)
    if head is not None:
        logger.info("%s head loaded from cache key=%s", kind, key)
        return head
    head = train_head(vectors([text for _, text in examples]), [label for label, _ in examples])
    save_cached(cache_dir, kind, key, head)
    logger.info("%s head trained labels=%d examples=%d key=%s", kind, len(head.labels), len(examples), key)
    return head


def cache_key(encoder_fingerprint: str, examples: list[tuple[str, str]]) -> str:
    blob = json.dumps([encoder_fingerprint, L2, STEPS, sorted(examples)], ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def load_cached(cache_dir: Path, kind: str, key: str) -> Head | None:
    path = cache_dir / f"{kind}-head-{key}.npz"
    if not path.exists():
        return None
    with np.load(path) as data:
        return Head(tuple(str(label) for label in data["labels"]), data["weights"], data["bias"])


def save_cached(cache_dir: Path, kind: str, key: str, head: Head) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / f".{kind}-head-{key}.tmp.npz"
    np.savez(tmp, labels=np.array(head.labels), weights=head.weights, bias=head.bias)
    tmp.replace(cache_dir / f"{kind}-head-{key}.npz")  # atomic: a concurrent worker never reads half a file
