"""The intent model's nearest-example vote and its blend with the head (pure numpy), and the examples' cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bot.classify.encoder import Embeddings
from bot.classify.head import Head
from bot.classify.neighbours import (
    GENERAL_WEIGHT,
    HEAD_WEIGHT,
    INTENT_WEIGHT,
    NEAR,
    K,
    Neighbours,
    example_vectors,
    fit,
    intent_model,
)


def unit(rows: list[list[float]]) -> np.ndarray:
    vectors = np.array(rows, dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


# Two tight groups of examples, labels 0 and 1, and a stray example of label 1 inside group 0.
EXAMPLES = unit([[1, 0, 0], [1, 0.1, 0], [1, -0.1, 0], [1, 0, 0.1], [1, 0, -0.1], [0, 1, 0], [0, 1, 0.1], [1, 0.05, 0]])
TARGETS = np.array([0, 0, 0, 0, 0, 1, 1, 1])


def test_the_vote_counts_only_the_k_nearest_weighted_by_closeness() -> None:
    neighbours = Neighbours(EXAMPLES, TARGETS, n_labels=3, temperature=0.05)
    votes = neighbours.votes(unit([[1, 0.02, 0], [0, 1, 0.05]]))
    assert votes.shape == (2, 3) and np.allclose(votes.sum(axis=1), 1, atol=1e-3)  # near examples: a full say
    # Near group 0, the stray label-1 example is among the five nearest, but outvoted; label 2 has no example.
    assert votes[0, 0] > 0.6 and 0 < votes[0, 1] < 0.4 and votes[0, 2] == 0
    # Near group 1, only two label-1 examples exist: the other three of the five nearest are far, and count
    # for little at a low temperature.
    assert votes[1, 1] > 0.99
    hot = Neighbours(EXAMPLES, TARGETS, n_labels=3, temperature=10.0).votes(unit([[0, 1, 0.05]]))
    # At a high temperature the five count about equally: group 1's two and the stray make three of five.
    assert 0.5 < hot[0, 1] / hot.sum() < 0.7


def test_neighbours_that_are_not_near_leave_the_say_to_the_head() -> None:
    neighbours = Neighbours(EXAMPLES, TARGETS, n_labels=2, temperature=0.05)
    far = unit([[0, 0, 1]])  # similarity at most 0.1 to any example, well below NEAR
    assert (EXAMPLES @ far.T).max() < NEAR
    assert neighbours.votes(far).sum() < 0.01
    labels = ("a", "b")
    head = Head(labels, np.zeros((3, 2)), np.array([1.0, 0.0]))  # prefers a, about 0.73 for every text
    model = intent_model(head, Embeddings(EXAMPLES, EXAMPLES), ["b" if t == 0 else "a" for t in TARGETS])
    assert np.allclose(model.probabilities(Embeddings(far, far)), head.probabilities(far), atol=0.01)


def test_fewer_examples_than_k_all_vote() -> None:
    neighbours = Neighbours(EXAMPLES[:2], TARGETS[:2], n_labels=2, temperature=0.1)
    assert len(EXAMPLES[:2]) < K
    votes = neighbours.votes(unit([[1, 0.05, 0]]))
    assert votes[0, 0] > 0.9 and votes[0, 1] == 0


def test_the_blend_weighs_the_head_and_both_votes() -> None:
    labels = ("a", "b")
    head = Head(labels, np.zeros((3, 2)), np.array([0.0, 0.0]))  # undecided: 0.5 / 0.5 for every text
    general = unit([[1, 0, 0], [1, 0.1, 0], [0, 1, 0], [0, 1, 0.1]])
    intent = unit([[0, 1, 0], [0, 1, 0.1], [1, 0, 0], [1, 0.1, 0]])  # the tuned vectors disagree with the general
    model = intent_model(head, Embeddings(general, intent), ["a", "a", "b", "b"])
    probabilities = model.probabilities(Embeddings(unit([[1, 0, 0]]), unit([[1, 0, 0]])))
    # The general vote says a, the intent vote says b: each carries its own weight on top of the head's half.
    assert np.allclose(probabilities.sum(axis=1), 1)
    assert abs(probabilities[0, 0] - (HEAD_WEIGHT * 0.5 + GENERAL_WEIGHT * 1.0)) < 0.01
    assert abs(probabilities[0, 1] - (HEAD_WEIGHT * 0.5 + INTENT_WEIGHT * 1.0)) < 0.01
    assert model.best(probabilities)[0][0] == "a"


def test_fit_trains_a_head_on_the_labels_in_sorted_order() -> None:
    vectors = Embeddings(EXAMPLES, EXAMPLES)
    labels = ["zeta" if t else "alpha" for t in TARGETS]
    model = fit(vectors, labels)
    assert model.labels == ("alpha", "zeta")
    [(first, _), (second, _)] = model.best(model.probabilities(Embeddings(EXAMPLES[[0, 5]], EXAMPLES[[0, 5]])))
    assert (first, second) == ("alpha", "zeta")


def test_example_vectors_are_cached_by_examples_in_order(tmp_path: Path) -> None:
    calls: list[list[str]] = []

    def embed(texts: list[str]) -> Embeddings:
        calls.append(texts)
        vectors = unit([[len(text), 1.0, 0.0] for text in texts])
        return Embeddings(vectors, vectors[:, ::-1].copy())

    examples = [("a", "one"), ("b", "three")]
    first = example_vectors(tmp_path, "model-1", examples, embed)
    second = example_vectors(tmp_path, "model-1", examples, embed)
    assert calls == [["one", "three"]]  # the second came from disk
    assert np.array_equal(first.general, second.general) and np.array_equal(first.intent, second.intent)
    example_vectors(tmp_path, "model-1", examples[::-1], embed)  # another order: rows would not line up
    example_vectors(tmp_path, "model-2", examples, embed)  # another model
    assert len(calls) == 3 and len(list(tmp_path.glob("intent-examples-*.npz"))) == 3
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind
