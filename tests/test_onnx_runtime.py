"""A message that comes alone runs in ONNX Runtime: the graph exported from the encoder as it is now (weights and
tuned layers), cached, and never run once the encoder has changed."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from bot.app import build_classifier
from bot.classify.encoder import TransformersEncoder
from bot.classify.onnx_runtime import Exported
from bot.config import Settings
from bot.policy.load import load_policy
from tests.conftest import ROOT, intent_examples

# From no word (2 tokens) to past the encoder's 128 (truncated): the graph takes any length.
TEXTS = ["", "do you sell tents", "my jacket leaks at the seams after a wash, can I get it replaced?", "tent " * 150]


def counting(encoder: TransformersEncoder, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many texts went through the encoder's ONNX Runtime session (it still runs them)."""
    assert encoder.lone is not None
    run, texts = encoder.lone.run, []

    def counted(input_ids: np.ndarray, attention_mask: np.ndarray) -> list[np.ndarray]:
        texts.append(len(input_ids))
        return run(input_ids, attention_mask)

    monkeypatch.setattr(encoder.lone, "run", counted)
    return texts


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1)


def test_a_message_alone_runs_in_onnx_runtime_with_the_vectors_of_a_batch(
    untuned: TransformersEncoder, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO, logger="bot.classify")
    untuned.tune_top(1, intent_examples(), tmp_path)
    untuned.serve_lone(tmp_path)
    assert [path.name for path in tmp_path.glob("*.onnx")] == [f"encoder-{untuned.intent_fingerprint}.onnx"]
    ran = counting(untuned, monkeypatch)

    batch = untuned.embed(TEXTS)  # several texts: PyTorch, in the encoder's dtype
    assert ran == []
    alone = [untuned.embed([text]) for text in TEXTS]
    assert ran == [1] * len(TEXTS)
    general, intent = np.vstack([v.general for v in alone]), np.vstack([v.intent for v in alone])
    assert general.dtype == np.float32 and np.allclose(np.linalg.norm(intent, axis=1), 1, atol=1e-5)
    assert cosines(general, batch.general).min() > 0.999 and cosines(intent, batch.intent).min() > 0.999
    assert not np.allclose(general, intent, atol=1e-3)  # the tuned layers' vector, not the general one again

    # The graph is the encoder's: the same weights in float32 through PyTorch give its vectors to rounding.
    assert untuned.top is not None
    graph = Exported(copy.deepcopy(untuned.model).float(), copy.deepcopy(untuned.top).float()).eval()
    tokens = untuned.tokenizer([TEXTS[2]], return_tensors="pt")
    with torch.inference_mode():
        expected = graph(tokens["input_ids"], tokens["attention_mask"])
    assert np.allclose(alone[2].general, expected[0].numpy(), atol=1e-5)
    assert np.allclose(alone[2].intent, expected[1].numpy(), atol=1e-5)

    # Exported once: a restart loads the file.
    untuned.lone = None
    untuned.serve_lone(tmp_path)
    assert len([r for r in caplog.records if r.message.startswith("exported the encoder to ONNX")]) == 1

    # Retuned, the encoder no longer matches the export: a message alone runs on PyTorch until served again.
    ran = counting(untuned, monkeypatch)
    untuned.tune_top(1, intent_examples()[1:], tmp_path)
    retuned = untuned.embed([TEXTS[2]])
    assert ran == [] and not np.allclose(retuned.intent, alone[2].intent, atol=1e-3)

    # Untuned (no top layers), the graph gives the general vector alone, and it stands for the intent one.
    untuned.tune_top(0, intent_examples(), tmp_path)
    untuned.serve_lone(tmp_path)
    ran = counting(untuned, monkeypatch)
    plain = untuned.embed([TEXTS[2]])
    assert ran == [1] and plain.intent is plain.general
    assert cosines(plain.general, untuned.embed(TEXTS).general[2:3]).min() > 0.999
    assert len(list(tmp_path.glob("encoder-*.onnx"))) == 2


def test_an_unreadable_export_leaves_a_message_alone_on_pytorch(
    untuned: TransformersEncoder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = tmp_path / f"encoder-{untuned.intent_fingerprint}.onnx"
    broken.write_bytes(b"not a graph")
    untuned.serve_lone(tmp_path)
    assert untuned.lone is None
    assert any(r.levelno == logging.WARNING and str(broken) in r.getMessage() for r in caplog.records)
    # PyTorch's own vector; alone and in a batch of two it may differ in the last bits (another GEMM kernel).
    assert np.allclose(untuned.embed([TEXTS[1]]).general, untuned.embed(TEXTS[1:2] * 2).general[:1], atol=1e-5)


def test_the_service_serves_a_message_alone_in_onnx_runtime_unless_turned_off(
    untuned: TransformersEncoder, brand_models: Path, make_settings: Callable[..., Settings]
) -> None:
    policy = load_policy(ROOT / "policies")
    build_classifier(make_settings(models_dir=brand_models, encoder_onnx=False), untuned, policy)
    assert untuned.top is not None and untuned.lone is None
    build_classifier(make_settings(models_dir=brand_models), untuned, policy)  # exported by brand_models: loaded
    assert untuned.lone is not None and untuned.lone.key == untuned.intent_fingerprint
