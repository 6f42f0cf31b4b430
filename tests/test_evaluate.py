"""eval-intents: the service's classifier trained on one CSV and scored on another, figures as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bot.classify.evaluate import calibrate, macro_f1, read_labelled
from bot.errors import ConfigError
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
    assert macro_f1(["a", "a", "b", "b"], ["a", "a", "b", "b"]) == 1.0
    assert macro_f1(["a", "a", "b", "b"], ["a", "b", "b", "b"]) == pytest.approx((2 / 3 + 0.8) / 2)


def test_eval_sentiment_scores_the_shipped_model(tmp_path: Path) -> None:
    result = run(
        "eval-sentiment",
        "--test",
        str(DATA / "sentiment_test.csv"),
        env={"HF_HUB_OFFLINE": "1", "BOT_DATA_DIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(figures) == {"accuracy", "macro_f1", "n_test", "texts_per_second"}
    assert figures["n_test"] == 9 and figures["accuracy"] >= 0.7
