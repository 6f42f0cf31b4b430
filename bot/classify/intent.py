"""The intent head: multinomial logistic regression on frozen sentence vectors, trained from the policy's
example utterances at start and cached on disk keyed by (examples, encoder), so a restart does not retrain."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

logger = logging.getLogger(__name__)

L2 = 1e-3
STEPS = 200


@dataclass(frozen=True)
class IntentHead:
    labels: tuple[str, ...]
    weights: np.ndarray  # (dimension, n_labels)
    bias: np.ndarray  # (n_labels,)

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        logits = vectors @ self.weights + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def predict(self, vectors: np.ndarray) -> list[tuple[str, float]]:
        probs = self.probabilities(vectors)
        best = probs.argmax(axis=1)
        return [(self.labels[i], float(probs[row, i])) for row, i in enumerate(best)]


def train_head(vectors: np.ndarray, labels: list[str]) -> IntentHead:
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
    return IntentHead(names, weights, bias)


def cache_key(encoder_fingerprint: str, examples: list[tuple[str, str]]) -> str:
    blob = json.dumps([encoder_fingerprint, L2, STEPS, sorted(examples)], ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def load_cached(cache_dir: Path, key: str) -> IntentHead | None:
    path = cache_dir / f"intent-head-{key}.npz"
    if not path.exists():
        return None
    with np.load(path) as data:
        return IntentHead(tuple(str(label) for label in data["labels"]), data["weights"], data["bias"])


def save_cached(cache_dir: Path, key: str, head: IntentHead) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / f".intent-head-{key}.tmp.npz"
    np.savez(tmp, labels=np.array(head.labels), weights=head.weights, bias=head.bias)
    tmp.replace(cache_dir / f"intent-head-{key}.npz")  # atomic: a concurrent worker never reads half a file
