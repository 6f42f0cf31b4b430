"""eval-intents: the service's classifier trained on one CSV and scored on another, figures as JSON."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from bot.classify.encoder import TransformersEncoder
from bot.classify.evaluate import (
    Labelled,
    calibrate,
    folds,
    holdout,
    holdout_each,
    macro_f1,
    out_of_fold,
    read_labelled,
)
from bot.errors import ConfigError
from bot.policy.load import load_policy
from tests.conftest import ROOT
from tests.test_cli import run

DATA = ROOT / "tests" / "data"


def test_eval_intents_prints_the_figures_last() -> None:
    result = run(
        "eval-intents",
        "--train",
        str(DATA / "intents_train.csv"),
        "--test",
        str(DATA / "intents_test.csv"),
        "--oos-label",
        "oos",
        env={"HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("most frequent confusions")
    figures = json.loads(lines[-1])
    assert set(figures) == {
        "accuracy",
        "macro_f1",
        "n_train",
        "n_test",
        "train_seconds",
        "texts_per_second",
        "in_scope_accuracy",
        "oos_recall",
        "threshold",
        "tuned_layers",
    }
    assert (figures["n_train"], figures["n_test"]) == (22, 8)
    assert figures["in_scope_accuracy"] == 1.0 and figures["accuracy"] >= 0.75
    assert 0 < figures["threshold"] < 1 and figures["texts_per_second"] > 0


def test_bad_csv_is_named_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("text,category\nhello,greeting\n,greeting\n")
    with pytest.raises(ConfigError, match=r"bad.csv:3: empty text"):
        read_labelled(path, "text", "category")
    with pytest.raises(ConfigError, match=r"bad.csv:1: no column 'intent'"):
        read_labelled(path, "text", "intent")
    result = run("eval-intents", "--train", str(path), "--test", str(path))
    assert result.returncode == 2 and "bad.csv:3: empty text" in result.stderr


def test_calibration_and_macro_f1() -> None:
    # In-scope predictions are confident (0.8-0.9), out-of-scope ones are not (0.2-0.4): the threshold splits them.
    threshold = calibrate(np.array([0.8, 0.9, 0.85]), np.array([True, True, True]), np.array([0.2, 0.4, 0.3]))
    assert 0.4 < threshold <= 0.8
    # With `keep`, the highest threshold that keeps that share of the right answers, whatever it costs in recall.
    confident = np.array([0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.96, 0.97, 0.98, 0.99])
    right = np.array([True] * 9 + [False])
    assert calibrate(confident, right, np.array([0.1]), keep=1.0) == pytest.approx(0.3)  # halfway below 0.5
    assert calibrate(confident, right, np.array([0.1]), keep=0.75) == pytest.approx(0.65)  # 7 of 9 kept
    assert macro_f1(["a", "a", "b", "b"], ["a", "a", "b", "b"]) == 1.0
    assert macro_f1(["a", "a", "b", "b"], ["a", "b", "b", "b"]) == pytest.approx((2 / 3 + 0.8) / 2)


def test_eval_sentiment_scores_the_shipped_model(tmp_path: Path) -> None:
    result = run(
        "eval-sentiment",
        "--test",
        str(DATA / "sentiment_test.csv"),
        env={"HF_HUB_OFFLINE": "1", "BOT_DATA_DIR": str(tmp_path), "BOT_INTENT_TUNED_LAYERS": "0"},
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(figures) == {"accuracy", "macro_f1", "n_test", "n_other", "texts_per_second", "by_label"}
    assert figures["n_test"] == 9 and figures["n_other"] == 0 and figures["accuracy"] >= 0.7
    assert sum(sum(read.values()) for read in figures["by_label"].values()) == 9


def test_eval_sentiment_maps_labels_and_shows_how_the_rest_read(tmp_path: Path) -> None:
    """A set of complaints to brands: `1` means negative; the other rows are only counted by what they read as."""
    env = {"HF_HUB_OFFLINE": "1", "BOT_DATA_DIR": str(tmp_path), "BOT_INTENT_TUNED_LAYERS": "0"}
    args = ["eval-sentiment", "--test", str(DATA / "complaints_test.csv"), "--label-col", "is_complaint"]
    result = run(*args, "--map", "1=negative", env=env)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert (figures["n_test"], figures["n_other"]) == (3, 2)
    assert figures["accuracy"] == 1.0  # the three complaints read as negative
    assert figures["by_label"]["1"] == {"negative": 3} and sum(figures["by_label"]["0"].values()) == 2
    assert figures["by_label"]["0"].get("negative", 0) < 2
    wrong = run(*args, "--map", "1=angry", env=env)
    assert wrong.returncode == 2 and "--map names no sentiment" in wrong.stderr and "angry" in wrong.stderr
    unmapped = run(*args, env=env)
    assert unmapped.returncode == 2 and "no row is labelled negative, neutral, positive" in unmapped.stderr
    malformed = run(*args, "--map", "1", env=env)
    assert malformed.returncode == 2 and "--map takes LABEL=NAME" in malformed.stderr


async def test_out_of_fold_confidences_come_from_heads_and_layers_that_never_saw_the_example(
    encoder: TransformersEncoder,
) -> None:
    rows = read_labelled(DATA / "intents_train.csv", "text", "category")
    examples = [(label, text) for label, text in zip(rows.labels, rows.texts, strict=True) if label != "oos"]
    oos = [text for label, text in zip(rows.labels, rows.texts, strict=True) if label == "oos"]
    try:
        confidence, correct, oos_confidence = await out_of_fold(encoder, examples, oos, 1, retune=True)
    finally:
        encoder.top = None
    assert confidence.shape == correct.shape == (len(examples),) and oos_confidence.shape == (len(oos) * 5,)
    assert correct.mean() >= 0.75  # held-out examples of three plain intents are mostly right
    assert float(np.median(oos_confidence)) < float(np.median(confidence))  # and surer than on nonsense
    threshold = calibrate(confidence, correct, oos_confidence)
    assert 0 < threshold < float(np.max(confidence))
    assert np.mean(oos_confidence < threshold) > np.mean(confidence < threshold)  # it tells the two apart


def test_calibrate_unknown_writes_the_threshold_into_the_policy(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", policies)
    env = {
        "HF_HUB_OFFLINE": "1",
        "BOT_DATA_DIR": str(tmp_path / "data"),
        "BOT_POLICIES_DIR": str(policies),
        "BOT_INTENT_TUNED_LAYERS": "0",
    }
    args = ["calibrate-unknown", "--oos", str(DATA / "intents_test.csv"), "--label-col", "category", "--write"]
    result = run(*args, env=env)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    brand = load_policy(ROOT / "policies").intents.intents
    assert (figures["n_oos"], figures["n_examples"]) == (2, sum(len(spec.examples) for spec in brand.values()))
    written = load_policy(policies).intents.unknown_threshold
    assert written == figures["threshold"] and 0 < written < 1
    assert "# calibrate-unknown --keep 0.95, " in (policies / "intents.yaml").read_text()
    assert load_policy(ROOT / "policies").intents.intents == load_policy(policies).intents.intents  # rest intact
    missing = run(*args[:-1], "--oos-label", "nonsense", env=env)
    assert missing.returncode == 2 and "no row labelled 'nonsense'" in missing.stderr


def test_holdout_keeps_every_label_on_both_sides() -> None:
    rows = read_labelled(DATA / "intents_train.csv", "text", "category")
    train, test = holdout(rows, 0.25)
    assert sorted(train.texts + test.texts) == sorted(rows.texts)
    assert set(test.labels) == set(rows.labels) == set(train.labels)
    assert holdout(rows, 0.25) == (train, test)  # the same seed, the same split
    other_train, other_test = holdout(rows, 0.25, seed=8)  # another seed: another split of the same sizes
    assert other_test != test and len(other_test.texts) == len(test.texts)
    seeded = run("eval-intents", "--train", str(DATA / "intents_train.csv"), "--holdout", "0.25", "--seed", "8")
    assert seeded.returncode == 0, seeded.stderr
    assert json.loads(seeded.stdout.splitlines()[-1])["n_train"] == len(other_train.texts)
    result = run("eval-intents", "--train", str(DATA / "intents_train.csv"), "--holdout", "1.5")
    assert result.returncode == 2 and "--holdout takes a share between 0 and 1" in result.stderr


def test_holdout_each_holds_out_as_many_of_every_label() -> None:
    # 3 labels of 7, 5 and 2 rows: 3 of each held out, but never a label's last row.
    texts = [f"{label} {n}" for label, size in (("a", 7), ("b", 5), ("c", 2)) for n in range(size)]
    data = Labelled(texts, [text.split()[0] for text in texts])
    train, test = holdout_each(data, 3)
    assert Counter(test.labels) == {"a": 3, "b": 3, "c": 1} and Counter(train.labels) == {"a": 4, "b": 2, "c": 1}
    assert sorted(train.texts + test.texts) == sorted(texts) and holdout_each(data, 3) == (train, test)
    assert holdout_each(data, 3, seed=8) != (train, test)
    result = run("eval-intents", "--train", str(DATA / "intents_train.csv"), "--holdout-each", "0")
    assert result.returncode == 2 and "--holdout-each takes a count of rows, 1 or more" in result.stderr


def test_folds_score_every_row_once_with_every_label_in_every_fold() -> None:
    # 3 labels of 7, 5 and 4 rows in 3 folds: 16 rows dealt in turn, so the folds hold 6, 5 and 5.
    texts = [f"{label} {n}" for label, size in (("a", 7), ("b", 5), ("c", 4)) for n in range(size)]
    data = Labelled(texts, [text.split()[0] for text in texts])
    splits = folds(data, 3)
    tested = [text for _, test in splits for text in test.texts]
    assert sorted(tested) == sorted(data.texts)  # each row in exactly one test part
    assert sorted(len(test.texts) for _, test in splits) == [5, 5, 6]
    for train, test in splits:
        assert sorted(train.texts + test.texts) == sorted(data.texts)  # trained on the rest, never on its test
        assert set(test.labels) == {"a", "b", "c"}  # every label has at least 3 rows: one in each fold
        assert all(text.split()[0] == label for text, label in zip(test.texts, test.labels, strict=True))
    assert folds(data, 3) == splits and folds(data, 3, seed=8) != splits  # the seed picks the deal


def test_eval_intents_cross_validates() -> None:
    rows = read_labelled(DATA / "intents_train.csv", "text", "category")
    result = run(
        "eval-intents", "--train", str(DATA / "intents_train.csv"), "--folds", "3", env={"HF_HUB_OFFLINE": "1"}
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    sizes = [len(test.texts) for _, test in folds(rows, 3)]
    assert figures["folds"] == len(figures["fold_accuracy"]) == 3 and figures["n_test"] == len(rows.texts)
    assert figures["n_train"] == round(len(rows.texts) - len(rows.texts) / 3)
    pooled = sum(accuracy * size for accuracy, size in zip(figures["fold_accuracy"], sizes, strict=True))
    assert figures["accuracy"] == pytest.approx(pooled / len(rows.texts), abs=1e-3)  # over all rows, each once
    assert figures["accuracy"] >= 0.75 and figures["fold_sd"] >= 0
    one = run("eval-intents", "--train", str(DATA / "intents_train.csv"), "--folds", "1")
    assert one.returncode == 2 and "--folds takes 2 to 22" in one.stderr
