"""`eval-intents`: train the service's own intent classifier on a labelled CSV and score it on another.

It goes through the same Classifier the service runs (same encoder, same head training, same prediction
path), so its figures are the product's, not a notebook's.
"""

from __future__ import annotations

import csv
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from bot.classify import UNKNOWN, Classifier
from bot.classify.encoder import TransformersEncoder
from bot.classify.neighbours import fit as fit_intents
from bot.classify.risk import RiskDetector
from bot.errors import ConfigError
from bot.models import Classification
from bot.policy.schema import SENTIMENTS, RiskLexicon

FOLDS = 5


@dataclass(frozen=True)
class Labelled:
    texts: list[str]
    labels: list[str]


def read_labelled(path: Path, text_col: str, label_col: str) -> Labelled:
    """Rows of a CSV with a header, or of a JSON Lines file (by its .jsonl suffix); a missing column, an empty
    cell or a bad line is an error naming the file and line."""
    texts, labels = [], []
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            for line, row in rows(path, handle, (text_col, label_col)):
                text, label = str(row.get(text_col) or "").strip(), str(row.get(label_col) or "").strip()
                if not text or not label:
                    raise ConfigError(f"{path}:{line}: empty {text_col if not text else label_col}")
                texts.append(text)
                labels.append(label)
    except FileNotFoundError as error:
        raise ConfigError(f"{path}: file not found") from error
    except (UnicodeDecodeError, csv.Error) as error:
        raise ConfigError(f"{path}: not a UTF-8 CSV file: {error}") from error
    if not texts:
        raise ConfigError(f"{path}: no rows")
    return Labelled(texts, labels)


JSON_LINES = (".jsonl", ".ndjson")


def rows(path: Path, handle: TextIO, columns: tuple[str, ...]) -> Iterator[tuple[int, dict[str, object]]]:
    """(line number, row) pairs of a CSV or JSON Lines file."""
    if path.suffix in JSON_LINES:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ConfigError(f"{path}:{number}: not JSON: {error.msg}") from error
            if not isinstance(row, dict):
                raise ConfigError(f"{path}:{number}: not a JSON object")
            missing = [c for c in columns if c not in row]
            if missing:
                raise ConfigError(f"{path}:{number}: no field {missing[0]!r}")
            yield number, row
        return
    reader = csv.DictReader(handle)
    missing = [c for c in columns if c not in (reader.fieldnames or [])]
    if missing:
        raise ConfigError(f"{path}:1: no column {missing[0]!r} (columns: {reader.fieldnames})")
    for row in reader:
        yield reader.line_num, dict(row)


def holdout(data: Labelled, share: float, seed: int = 7) -> tuple[Labelled, Labelled]:
    """A stratified split: `share` of each label's rows (at least one, when it has two or more) held out."""
    return _held_out(data, seed, lambda rows: max(1, round(share * rows)))


def holdout_each(data: Labelled, count: int, seed: int = 7) -> tuple[Labelled, Labelled]:
    """`count` rows of every label held out (all but one of a label that has fewer): a test part with as many of
    each label, as Banking77's and CLINC150's own test splits are built, where a part in the train file's
    proportions would reward a model for leaning to the labels with more examples."""
    return _held_out(data, seed, lambda rows: min(count, rows - 1))


def _held_out(data: Labelled, seed: int, take: Callable[[int], int]) -> tuple[Labelled, Labelled]:
    held: set[int] = set()
    for rows in _shuffled_by_label(data, seed):
        held.update(rows[: take(len(rows))] if len(rows) > 1 else [])
    return _split(data, held)


def folds(data: Labelled, k: int, seed: int = 7) -> list[tuple[Labelled, Labelled]]:
    """Stratified k-fold cross-validation, as (train, test) pairs: each label's rows, shuffled, are dealt in
    turn to the k folds, and the deal goes on from one label to the next, so every fold holds about 1/k of each
    label and the folds' sizes differ by one at most. Every row is in exactly one test part: scored once, by a
    model that never saw it, and by models trained on (k-1)/k of the data rather than a holdout's smaller share."""
    fold_of: dict[int, int] = {}
    for rows in _shuffled_by_label(data, seed):
        for i in rows:
            fold_of[i] = len(fold_of) % k
    return [_split(data, {i for i, f in fold_of.items() if f == fold}) for fold in range(k)]


def _shuffled_by_label(data: Labelled, seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(data.labels):
        by_label.setdefault(label, []).append(i)
    for rows in by_label.values():
        rng.shuffle(rows)
    return list(by_label.values())


def _split(data: Labelled, held: set[int]) -> tuple[Labelled, Labelled]:
    parts = ([i for i in range(len(data.texts)) if i not in held], sorted(held))
    train, test = (Labelled([data.texts[i] for i in part], [data.labels[i] for i in part]) for part in parts)
    return train, test


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


def calibrate(
    in_scope_confidence: np.ndarray, in_scope_correct: np.ndarray, oos_confidence: np.ndarray, keep: float | None = None
) -> float:
    """The confidence below which a message is `unknown`. By default it maximises the mean of in-scope accuracy
    (a correct, confident prediction) and out-of-scope recall on held-out examples. With `keep`, it is the
    highest threshold that still keeps that share of the correct in-scope predictions: a brand whose customers
    rarely stray off topic should not give up many right answers to catch a few strays. Either way it lies
    halfway between two observed confidences, not on one, so it doesn't hug the data it was fitted on."""
    observed = np.unique(np.concatenate([in_scope_confidence, oos_confidence, [0.0]]))
    candidates = (observed[1:] + observed[:-1]) / 2
    best, best_score = 0.0, -1.0
    right = in_scope_correct.sum()
    for threshold in candidates:
        kept = in_scope_correct & (in_scope_confidence >= threshold)  # correct and confident enough
        if keep is not None:
            if kept.sum() < keep * right:
                break  # candidates rise: every later one keeps fewer
            best = float(threshold)
            continue
        accuracy, recall = float(np.mean(kept)), float(np.mean(oos_confidence < threshold))
        if (accuracy + recall) / 2 > best_score:
            best, best_score = float(threshold), (accuracy + recall) / 2
    return best


def _folds(n: int, k: int, seed: int = 0) -> list[list[int]]:
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return [order[i::k] for i in range(k)]


async def out_of_fold(
    encoder: TransformersEncoder,
    examples: list[tuple[str, str]],
    oos_texts: list[str],
    tuned_layers: int,
    retune: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each (label, text) example's confidence from an intent model (head and neighbours) that never saw it,
    whether that model was right, and the out-of-scope texts' confidences from the same models. With `retune`
    the top layers are tuned anew without each fold too (unbiased, five tunings); without, they are tuned once
    on every example, which flatters the in-scope confidences a little but costs one tuning, for large sets."""
    labels, texts = [label for label, _ in examples], [text for _, text in examples]
    confidence, correct, oos_confidence = np.zeros(len(examples)), np.zeros(len(examples), bool), []
    for fold, held in enumerate(_folds(len(examples), FOLDS)):
        held_set = set(held)
        fit = [i for i in range(len(examples)) if i not in held_set]
        if fold == 0 or retune:
            await encoder.in_thread(encoder.tune_top, tuned_layers, [examples[i] for i in fit] if retune else examples)
            vectors = await encoder.in_thread(encoder.embed, texts, encoder.run_batch)
            oos_vectors = await encoder.in_thread(encoder.embed, oos_texts, encoder.run_batch)
        probe = fit_intents(vectors.take(fit), [labels[i] for i in fit])
        for (guess, score), i in zip(probe.best(probe.probabilities(vectors.take(held))), held, strict=True):
            confidence[i], correct[i] = score, guess == labels[i]
        oos_confidence += [score for _, score in probe.best(probe.probabilities(oos_vectors))]
    return confidence, correct, np.array(oos_confidence)


@dataclass(frozen=True)
class Scored:
    """One trained intent model's predictions on its test rows, and what it cost."""

    gold: list[str]
    predicted: list[str]
    n_train: int
    train_seconds: float
    score_seconds: float
    threshold: float


async def trained_and_scored(
    encoder: TransformersEncoder, train: Labelled, test: Labelled, oos_label: str | None = None, tuned_layers: int = 0
) -> Scored:
    """Train on `train` as the service trains on the brand's intents (tuned top layers, then the head and the
    neighbours) and classify `test` through the service's Classifier."""
    started = time.perf_counter()
    examples = [(label, text) for label, text in zip(train.labels, train.texts, strict=True) if label != oos_label]
    threshold = 0.0
    if oos_label is not None:
        oos = [text for label, text in zip(train.labels, train.texts, strict=True) if label == oos_label]
        if not oos:
            raise ConfigError(f"no training row is labelled {oos_label!r}: nothing to calibrate the threshold on")
        threshold = calibrate(*await out_of_fold(encoder, examples, oos, tuned_layers, retune=False))
    else:
        await encoder.in_thread(encoder.tune_top, tuned_layers, examples)
    vectors = await encoder.in_thread(encoder.embed, [text for _, text in examples], encoder.run_batch)
    model = fit_intents(vectors, [label for label, _ in examples])
    train_seconds = time.perf_counter() - started

    classifier = Classifier(encoder, model, RiskDetector(RiskLexicon(flags={})), unknown_below=threshold)
    started = time.perf_counter()
    results, _ = await classifier.classify_many(test.texts)
    return Scored(
        gold=[UNKNOWN if label == oos_label else label for label in test.labels],
        predicted=[result.intent for result in results],
        n_train=len(train.texts),
        train_seconds=train_seconds,
        score_seconds=time.perf_counter() - started,
        threshold=threshold,
    )


def intent_figures(runs: Sequence[Scored], tuned_layers: int, oos_label: str | None = None) -> dict[str, object]:
    """The figures of one model on its test set, or of k cross-validation folds' models pooled: each row of
    the data scored once, so accuracy is over all rows, with each fold's own accuracy beside it to show the
    spread. Sizes and seconds are each model's (the mean over folds)."""
    gold, predicted = pooled(runs)
    figures: dict[str, object] = {
        **accuracy_figures(gold, predicted),
        "n_train": round(float(np.mean([run.n_train for run in runs]))),
        "train_seconds": round(float(np.mean([run.train_seconds for run in runs])), 1),
        "texts_per_second": round(len(gold) / sum(run.score_seconds for run in runs), 1),
        "tuned_layers": tuned_layers,
    }
    if len(runs) > 1:
        fold_accuracy = [accuracy_figures(run.gold, run.predicted)["accuracy"] for run in runs]
        figures |= {
            "folds": len(runs),
            "fold_accuracy": fold_accuracy,
            "fold_sd": round(float(np.std(fold_accuracy)), 4),
        }
    if oos_label is not None:
        scoped = [(g, p) for g, p in zip(gold, predicted, strict=True) if g != UNKNOWN]
        unknown = [p for g, p in zip(gold, predicted, strict=True) if g == UNKNOWN]
        figures["in_scope_accuracy"] = round(float(np.mean([g == p for g, p in scoped])), 4)
        figures["oos_recall"] = round(float(np.mean([p == UNKNOWN for p in unknown])), 4) if unknown else 0.0
        thresholds = [round(run.threshold, 4) for run in runs]
        figures |= {"threshold": thresholds[0]} if len(runs) == 1 else {"fold_thresholds": thresholds}
    return figures


async def evaluate(
    encoder: TransformersEncoder,
    splits: Sequence[tuple[Labelled, Labelled]],
    oos_label: str | None = None,
    tuned_layers: int = 0,
) -> tuple[dict[str, object], list[str]]:
    """Train and score on each (train, test) split (one, or k folds): the figures and the confusion summary."""
    runs = [await trained_and_scored(encoder, train, test, oos_label, tuned_layers) for train, test in splits]
    return intent_figures(runs, tuned_layers, oos_label), confusions(*pooled(runs))


def pooled(runs: Sequence[Scored]) -> tuple[list[str], list[str]]:
    """Every run's gold labels and predictions, as one test set."""
    return [label for run in runs for label in run.gold], [label for run in runs for label in run.predicted]


async def calibrate_unknown(
    encoder: TransformersEncoder,
    examples: list[tuple[str, str]],
    oos_texts: list[str],
    tuned_layers: int,
    keep: float | None = None,
) -> dict[str, float | int]:
    """The brand's `unknown_threshold`, from its own examples (out of fold, tuned without them) against messages
    it should not claim to understand, with the in-scope accuracy and out-of-scope recall it gives there."""
    confidence, correct, oos_confidence = await out_of_fold(encoder, examples, oos_texts, tuned_layers, retune=True)
    threshold = calibrate(confidence, correct, oos_confidence, keep)
    return {
        "threshold": round(threshold, 3),
        "in_scope_accuracy": round(float(np.mean(correct & (confidence >= threshold))), 4),
        "oos_recall": round(float(np.mean(oos_confidence < threshold)), 4),
        "n_examples": len(examples),
        "n_oos": len(oos_texts),
    }


def sentiments_of(labels: Sequence[str], aliases: Mapping[str, str]) -> list[str]:
    """Each row's sentiment: its label, or what `--map` maps it to (`1` -> `negative` for a set of complaints
    to brands). Pure, so a mapping to no sentiment, or a file with no row to score, is refused before the
    model loads."""
    unknown = sorted(set(aliases.values()) - set(SENTIMENTS))
    if unknown:
        raise ConfigError(f"--map names no sentiment ({', '.join(SENTIMENTS)}): {', '.join(unknown)}")
    gold = [aliases.get(label, label) for label in labels]
    if not any(label in SENTIMENTS for label in gold):
        raise ConfigError(f"no row is labelled {', '.join(SENTIMENTS)} or mapped to one with --map LABEL=SENTIMENT")
    return gold


async def score(classifier: Classifier, test: Labelled, gold: list[str]) -> tuple[dict[str, object], list[str]]:
    """The shipped sentiment model's figures on a labelled file, and what it read each label of the file as.

    Rows whose `gold` (`sentiments_of`) is no sentiment are not scored, but `by_label` shows how they were
    read (how many of the tweets that are not complaints read as negative, say).
    """
    rows = [i for i, label in enumerate(gold) if label in SENTIMENTS]
    figures, predicted = await _scored(classifier, test.texts, gold, lambda c: c.sentiment or "", rows)
    read_as: dict[str, Counter[str]] = {}
    for label, sentiment in zip(test.labels, predicted, strict=True):
        read_as.setdefault(label, Counter())[sentiment] += 1
    by_label = {label: dict(sorted(counts.items())) for label, counts in sorted(read_as.items())}
    mistakes = confusions([gold[i] for i in rows], [predicted[i] for i in rows])
    return figures | {"n_other": len(gold) - len(rows), "by_label": by_label}, mistakes


async def _scored(
    classifier: Classifier,
    texts: list[str],
    gold: list[str],
    label: Callable[[Classification], str],
    rows: list[int] | None = None,
) -> tuple[dict[str, float | int], list[str]]:
    """Classify `texts` through the service's path: every text's prediction, and accuracy, macro F1 and size
    against `gold` on `rows` (all of them by default), with the speed over all texts."""
    started = time.perf_counter()
    results, _ = await classifier.classify_many(texts)
    seconds = time.perf_counter() - started
    predicted = [label(result) for result in results]
    rows = list(range(len(texts))) if rows is None else rows
    figures = accuracy_figures([gold[i] for i in rows], [predicted[i] for i in rows])
    return figures | {"texts_per_second": round(len(texts) / seconds, 1)}, predicted


def accuracy_figures(gold: list[str], predicted: list[str]) -> dict[str, float | int]:
    """Accuracy, macro F1 (rare labels count as much as common ones) and the number of rows scored."""
    return {
        "accuracy": round(float(np.mean([g == p for g, p in zip(gold, predicted, strict=True)])), 4),
        "macro_f1": round(macro_f1(gold, predicted), 4),
        "n_test": len(gold),
    }


def flags_of(lexicon: RiskLexicon, aliases: Mapping[str, str]) -> dict[str, str]:
    """The flag each label stands for: a flag's name, one of the flag's intents, or what `--map` maps it to
    (`1` -> `prompt_injection` for a binary data set). Pure, so a mapping to no flag is refused before the
    model loads."""
    unknown = sorted(set(aliases.values()) - set(lexicon.flags))
    if unknown:
        raise ConfigError(f"--map names no flag of the risk policy: {', '.join(unknown)}")
    flag_of = {intent: name for name, spec in lexicon.flags.items() for intent in spec.intents}
    return flag_of | {name: name for name in lexicon.flags} | dict(aliases)


async def score_risks(
    classifier: Classifier, test: Labelled, flag_of: Mapping[str, str]
) -> tuple[dict[str, object], list[str]]:
    """How many rows labelled with a risk (`flags_of`) raise its flag (recall), and how many other rows raise
    any flag; rows whose label stands for no flag count as "other"."""
    started = time.perf_counter()
    results, _ = await classifier.classify_many(test.texts)
    seconds = time.perf_counter() - started
    per_flag: dict[str, dict[str, float | int]] = {}
    misses, other, other_flagged = [], 0, 0
    for text, label, result in zip(test.texts, test.labels, results, strict=True):
        raised = {flag.name for flag in result.risk_flags}
        flag = flag_of.get(label)
        if flag is None:
            other += 1
            other_flagged += bool(raised)
            if raised:
                misses.append(f"{'(' + label + ')':18} raised {sorted(raised)}: {text[:100]!r}")
            continue
        counts = per_flag.setdefault(flag, {"n": 0, "caught": 0})
        counts["n"] += 1
        counts["caught"] += flag in raised
        if flag not in raised:
            misses.append(f"{flag:18} raised {sorted(raised) or '-'}: {text[:100]!r}")
    for counts in per_flag.values():
        counts["recall"] = round(counts["caught"] / counts["n"], 4)
    positives = sum(int(c["n"]) for c in per_flag.values())
    figures: dict[str, object] = {
        "recall": round(sum(int(c["caught"]) for c in per_flag.values()) / positives, 4) if positives else 0.0,
        "n_positive": positives,
        "n_other": other,
        "other_flagged_rate": round(other_flagged / other, 4) if other else 0.0,
        "texts_per_second": round(len(test.texts) / seconds, 1),
        "per_flag": dict(sorted(per_flag.items())),
    }
    return figures, misses
