"""A message that comes alone, through ONNX Runtime: the encoder and its tuned top layers exported as one graph.

A message that arrives while the model is idle runs alone, and PyTorch spends most of such a run in matrix
products of a dozen rows, where its kernels reach a fraction of what they reach on batches (BENCHMARKS.md). ONNX
Runtime's kernels run the same weights, in float32, in about half the time (bench/one_message.py). On batches
PyTorch is as fast or faster (bfloat16, where the CPU has it), so batches stay there: the two runtimes hold
the same weights, and a text's vectors from either agree to within the bfloat16 rounding of the batches.
"""

from __future__ import annotations

import logging
import multiprocessing
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from transformers import AutoModel, PretrainedConfig

from bot.classify import cache
from bot.classify.tuning import TopLayers, mean_pool


class Exported(torch.nn.Module):
    """The encoder and its tuned top layers as one graph: token ids and mask in, the unit vectors out (the
    general one, and the intent one when top layers are tuned)."""

    def __init__(self, model: torch.nn.Module, top: TopLayers | None) -> None:
        super().__init__()
        self.model = model
        self.top = top

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=self.top is not None)
        general = mean_pool(out.last_hidden_state, attention_mask)
        if self.top is None:
            return (general,)
        return general, self.top(out.hidden_states[self.top.start], attention_mask)


Weights = dict[str, torch.Tensor]


def export(
    config: PretrainedConfig, weights: Weights, top: tuple[int, Weights] | None, sample: Weights, path: Path
) -> None:
    """Write the encoder (its `config` and float32 `weights`) with its tuned top layers (how many, and their
    float32 weights; None when untuned) to `path` as one graph for any batch of any length. `sample` is a
    tokenised batch of two texts of different lengths, which the exporter traces. In a child process: a process
    that has exported keeps ~250 MiB more than the graph (the exporter's modules and traces), and the
    exporter's logging and warnings stay its own."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as child:
        child.submit(_export, config, weights, top, sample, path).result()


def _export(
    config: PretrainedConfig, weights: Weights, top: tuple[int, Weights] | None, sample: Weights, path: Path
) -> None:
    model = AutoModel.from_config(config)
    model.load_state_dict(weights)
    tuned = None
    if top is not None:
        tuned = TopLayers.copied_from(model, top[0])
        tuned.load_state_dict(top[1])
    # The exporter's chatter, kept out of the log (this process ends with the export): its passes log each
    # rewrite at INFO, and it warns about packages it doesn't need (torchvision) and its own deprecations.
    for name in ("torch.onnx", "onnxscript", "onnx_ir"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.simplefilter("ignore", FutureWarning)
    warnings.simplefilter("ignore", UserWarning)
    dynamic = {0: torch.export.Dim.DYNAMIC, 1: torch.export.Dim.DYNAMIC}
    program = torch.onnx.export(
        Exported(model, tuned).eval(),
        (sample["input_ids"], sample["attention_mask"]),
        dynamo=True,
        input_names=["input_ids", "attention_mask"],
        dynamic_shapes={"input_ids": dynamic, "attention_mask": dynamic},
        optimize=True,
        verbose=False,
    )
    if program is None:  # only the legacy exporter writes nothing back; the dynamo one always returns a program
        raise RuntimeError("torch.onnx.export returned no program")
    cache.write_atomically(path, program.save)


class OnnxEncoder:
    """An exported graph in an ONNX Runtime session; `key` is what it was exported from (the encoder's
    intent_fingerprint), so that a retuned encoder does not run an old export."""

    def __init__(self, path: Path, key: str, threads: int) -> None:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        # No spinning after a run: the next model run is PyTorch's or a while off, and a spinning thread would
        # take a core from it and from the event loop.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.key = key

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> list[np.ndarray]:
        """The graph's outputs (general, then intent if tuned), float32 unit rows."""
        outputs = self.session.run(None, {"input_ids": input_ids, "attention_mask": attention_mask})
        return [np.asarray(vectors, dtype=np.float32) for vectors in outputs]
