"""Tuned top layers: a copy of the encoder's top layers, trained on the intents, cached by what it learned from."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from bot.app import load_encoder
from bot.classify.encoder import TransformersEncoder, default_model_path, inference_dtype, run_batch
from bot.classify.head import train_head
from bot.classify.tuning import TopLayers
from bot.config import Settings
from tests.conftest import intent_examples

# Lengths from 1 to ~40 tokens in one batch: padding must not leak into the real tokens' states.
TEXTS = [
    "hi",
    "where is my parcel? it was meant to arrive on tuesday and the tracking has not moved since",
    "do you sell tents",
    "my jacket leaks at the seams after one wash, can I get it repaired or replaced under the guarantee?",
]


def test_an_untuned_copy_of_the_top_layers_gives_the_encoders_own_vectors(untuned: TransformersEncoder) -> None:
    untuned.top = TopLayers.copied_from(untuned.model, 2)
    vectors = untuned.embed(TEXTS, batch_size=4)
    assert vectors.intent is not vectors.general
    assert np.allclose(vectors.intent, vectors.general, atol=1e-5)


def test_tuning_is_cached_by_examples_and_sharpens_the_intents(
    untuned: TransformersEncoder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    examples = intent_examples()
    texts, labels = [t for _, t in examples], [label for label, _ in examples]
    frozen = train_head(untuned.embed(texts).general, labels)

    caplog.set_level(logging.INFO, logger="bot.classify")
    untuned.tune_top(1, examples, tmp_path)
    first, first_fingerprint = untuned.embed(texts), untuned.intent_fingerprint
    untuned.tune_top(1, examples, tmp_path)  # the same examples: loaded, not tuned again
    second = untuned.embed(texts)
    assert untuned.intent_fingerprint == first_fingerprint != untuned.fingerprint
    assert len([r for r in caplog.records if r.message.startswith("tuned top layers=1")]) == 1
    assert len(list(tmp_path.glob("intent-top1-*.pt"))) == 1
    assert np.array_equal(first.intent, second.intent)
    assert np.array_equal(first.general, untuned.embed(texts).general)  # the general vectors are untouched

    # The tuned vectors pull each intent's examples together: a head on them is surer of the right intent.
    tuned = train_head(first.intent, labels)
    right = [frozen.labels.index(label) for label in labels]
    sure_frozen = frozen.probabilities(first.general)[np.arange(len(labels)), right].mean()
    sure_tuned = tuned.probabilities(first.intent)[np.arange(len(labels)), right].mean()
    assert sure_tuned > sure_frozen

    untuned.tune_top(1, examples[1:], tmp_path)  # other examples: tuned again, cached beside
    assert len(list(tmp_path.glob("intent-top1-*.pt"))) == 2
    # Heads and example vectors are cached by the tuning their intent vectors came from, not just its depth.
    assert untuned.intent_fingerprint not in (first_fingerprint, untuned.fingerprint)
    untuned.tune_top(0, examples, tmp_path)
    assert untuned.top is None and np.array_equal(untuned.embed(texts).intent, first.general)
    assert untuned.intent_fingerprint == untuned.fingerprint


def test_a_model_without_transformer_blocks_cannot_be_tuned() -> None:
    with pytest.raises(TypeError, match="no encoder.layer"):
        TopLayers.copied_from(torch.nn.Linear(2, 2), 1)


def test_bfloat16_is_chosen_only_where_the_cpu_computes_it_natively() -> None:
    assert inference_dtype("auto", {"avx512_bf16": True}) == torch.bfloat16
    assert inference_dtype("auto", {"avx512_bf16": False, "amx_bf16": True}) == torch.bfloat16
    assert inference_dtype("auto", {"avx512_bf16": False, "avx2": True}) == torch.float32  # emulated: slower
    assert inference_dtype("float32", {"avx512_bf16": True}) == torch.float32
    assert inference_dtype("bfloat16", {}) == torch.bfloat16


def test_runs_go_through_in_larger_batches_only_where_amx_multiplies_them() -> None:
    assert run_batch(torch.bfloat16, {"avx512_bf16": True, "amx_bf16": True}) == 64
    assert run_batch(torch.bfloat16, {"avx512_bf16": True, "amx_bf16": False}) == 32
    assert run_batch(torch.float32, {"amx_bf16": True}) == 32  # AMX does not multiply float32


def test_a_bfloat16_encoder_gives_the_float32_vectors_and_tunes_in_float32(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    full = load_encoder(make_settings(encoder_precision="float32"))  # as the service loads it
    half = TransformersEncoder(default_model_path(), "bfloat16")
    try:
        assert (full.model.dtype, half.model.dtype) == (torch.float32, torch.bfloat16)
        assert half.fingerprint != full.fingerprint  # what was cached from one dtype's vectors is not reused
        exact, rounded = full.embed(TEXTS).general, half.embed(TEXTS).general
        assert rounded.dtype == np.float32 and np.allclose(np.linalg.norm(rounded, axis=1), 1, atol=1e-5)
        assert float(np.min((exact * rounded).sum(axis=1))) > 0.999

        examples = intent_examples()
        half.tune_top(1, examples, tmp_path)
        cached = torch.load(next(tmp_path.glob("intent-top1-*.pt")), weights_only=True)
        assert {tensor.dtype for tensor in cached.values()} == {torch.float32}  # tuned (and kept) in float32
        assert half.top is not None and {p.dtype for p in half.top.parameters()} == {torch.bfloat16}  # run in bf16
        labels = [label for label, _ in examples]
        intent = half.embed([text for _, text in examples]).intent
        head = train_head(intent, labels)
        predicted = [label for label, _ in head.best(head.probabilities(intent))]
        assert np.mean(np.array(predicted) == np.array(labels)) > 0.9  # the bf16 copy runs what was learnt
    finally:
        full.close()
        half.close()
