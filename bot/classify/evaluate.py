"""`eval-intents`: train the service's own intent classifier on a labelled CSV and score it on another.

It goes through the same Classifier the service runs (same encoder, same head training, same prediction
path), so its figures are the product's, not a notebook's.
"""

from __future__ import annotations

import csv
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.classify import UNKNOWN, Classifier
from bot.classify.encoder import TransformersEncoder
from bot.classify.head import train_head
from bot.classify.risk import RiskDetector
from bot.errors import ConfigError
from bot.models import Classification
from bot.policy.schema import RiskLexicon

FOLDS = 5


@dataclass(frozen=True)
class Labelled:
    texts: list[str]
    labels: list[str]


def read_labelled(path: Path, text_col: str, label_col: str) -> Labelled:
    """Rows of a CSV with a header; a missing column or an empty cell is an error naming the file and line."""
    texts, labels = [], []
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in (text_col, label_col) if c not in (reader.fieldnames or [])]
            if missing:
                raise ConfigError(f"{path}:1: no column {missing[0]!r} (columns: {reader.fieldnames})")
            for row in reader:
                text, label = (row.get(text_col) or "").strip(), (row.get(label_col) or "").strip()
                if not text or not label:
                    raise ConfigError(f"{path}:{reader.line_num}: empty {text_col if not text else label_col}")
                texts.append(text)
                labels.append(label)
    except FileNotFoundError as error:
        raise ConfigError(f"{path}: file not found") from error
    except (UnicodeDecodeError, csv.Error) as error:
        raise ConfigError(f"{path}: not a UTF-8 CSV file: {error}") from error
    if not texts:
        raise ConfigError(f"{path}: no rows")
    return Labelled(texts, labels)


def macro_f1(gold: list[str], predicted: list[str]) -> float:
    """Unweighted mean of per-label F1 over the labels of the gold set."""
    scores = []
    for label in sorted(set(gold)):
        tp = sum(g == p == label for g, p in zip(gold, predicted, strict=True))
        fp = sum(p == label and g != label for g, p in zip(gold, predicted, strict=True))
        fn = sum(g == label and p != label for g, p in zip(gold, predicted, strict=True))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return float(np.mean(scores))


def confusions(gold: list[str], predicted: list[str], top: int = 10) -> list[str]:
    """The most frequent mistakes, as lines 'count  gold -> predicted'."""
    mistakes = Counter((g, p) for g, p in zip(gold, predicted, strict=True) if g != p)
    return [f"{count:5d}  {g} -> {p}" for (g, p), count in mistakes.most_common(top)]


def calibrate(in_scope_confidence: np.ndarray, in_scope_correct: np.ndarray, oos_confidence: np.ndarray) -> float:
    """The confidence below which a message is `unknown`, chosen to maximise the mean of in-scope accuracy
    (a correct, confident prediction) and out-of-scope recall on held-out examples; it lies halfway between
    two observed confidences, not on one, so it doesn't hug the data it was fitted on."""
    observed = np.unique(np.concatenate([in_scope_confidence, oos_confidence]))
    candidates = (observed[1:] + observed[:-1]) / 2 if len(observed) > 1 else observed
    best, best_score = 0.0, -1.0
    for threshold in candidates:
        accuracy = float(np.mean(in_scope_correct & (in_scope_confidence >= threshold)))
        recall = float(np.mean(oos_confidence < threshold))
        if (accuracy + recall) / 2 > best_score:
            best, best_score = float(threshold), (accuracy + recall) / 2
    return best


def _folds(n: int, k: int, seed: int = 0) -> list[list[int]]:
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return [order[i::k] for i in range(k)]


async def evaluate(
    encoder: TransformersEncoder, train: Labelled, test: Labelled, oos_label: str | None = None
) -> tuple[dict[str, float | int], list[str]]:
    """Train on `train`, score on `test`: the figures and the confusion summary."""
    started = time.perf_counter()
    in_scope = [i for i, label in enumerate(train.labels) if label != oos_label]
    vectors = await encoder.aembed(train.texts)
    labels = [train.labels[i] for i in in_scope]
    threshold = 0.0
    if oos_label is not None:
        oos = [i for i, label in enumerate(train.labels) if label == oos_label]
        if not oos:
            raise ConfigError(f"no training row is labelled {oos_label!r}: nothing to calibrate the threshold on")
        # Out-of-fold confidences: every in-scope example is scored by a head that never saw it.
        confidence, correct, oos_confidence = [], [], []
        for held in _folds(len(in_scope), FOLDS):
            held_set = set(held)
            fit = [i for i in range(len(in_scope)) if i not in held_set]
            probe = train_head(vectors[[in_scope[i] for i in fit]], [labels[i] for i in fit])
            for (guess, score), i in zip(probe.predict(vectors[[in_scope[i] for i in held]]), held, strict=True):
                confidence.append(score)
                correct.append(guess == labels[i])
            oos_confidence += [score for _, score in probe.predict(vectors[oos])]
        threshold = calibrate(np.array(confidence), np.array(correct), np.array(oos_confidence))
    head = train_head(vectors[in_scope], labels)
    train_seconds = time.perf_counter() - started

    classifier = Classifier(encoder, head, RiskDetector(RiskLexicon(flags={})), unknown_below=threshold)
    gold = [UNKNOWN if label == oos_label else label for label in test.labels]
    figures, predicted = await _scored(classifier, test.texts, gold, lambda c: c.intent)
    figures |= {"n_train": len(train.texts), "train_seconds": round(train_seconds, 1)}
    if oos_label is not None:
        scoped = [(g, p) for g, p in zip(gold, predicted, strict=True) if g != UNKNOWN]
        unknown = [p for g, p in zip(gold, predicted, strict=True) if g == UNKNOWN]
        figures["in_scope_accuracy"] = round(float(np.mean([g == p for g, p in scoped])), 4)
        figures["oos_recall"] = round(float(np.mean([p == UNKNOWN for p in unknown])), 4) if unknown else 0.0
        figures["threshold"] = round(threshold, 4)
    return figures, confusions(gold, predicted)


async def score(classifier: Classifier, test: Labelled) -> tuple[dict[str, float | int], list[str]]:
    """The shipped sentiment model's figures on a labelled CSV (labels negative / neutral / positive)."""
    figures, predicted = await _scored(classifier, test.texts, test.labels, lambda c: c.sentiment or "")
    return figures, confusions(test.labels, predicted)


async def _scored(
    classifier: Classifier, texts: list[str], gold: list[str], label: Callable[[Classification], str]
) -> tuple[dict[str, float | int], list[str]]:
    """Classify `texts` through the service's path; accuracy, macro F1, size and speed against `gold`."""
    started = time.perf_counter()
    results, _ = await classifier.classify_many(texts)
    seconds = time.perf_counter() - started
    predicted = [label(result) for result in results]
    figures: dict[str, float | int] = {
        "accuracy": round(float(np.mean([g == p for g, p in zip(gold, predicted, strict=True)])), 4),
        "macro_f1": round(macro_f1(gold, predicted), 4),
        "n_test": len(texts),
        "texts_per_second": round(len(texts) / seconds, 1),
    }
    return figures, predicted
