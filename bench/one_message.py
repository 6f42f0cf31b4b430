"""One message at a time through each way the encoder can run, measured in pairs: PyTorch in float32, PyTorch in
bfloat16, and ONNX Runtime (float32, where the service runs a message that comes alone).

    python bench/one_message.py [--texts FILE] [--n 300] [--rounds 3] [--tuned-layers 2]

This VM's speed drifts by half within minutes, so two benchmark runs one after the other do not compare them;
here each message goes through all three back to back (the order turning each round), and the medians of the
per-message time ratios are the figures. Prints each one's p50/p99, those ratios, and how far each moves the
vectors from PyTorch's float32 (cosine). FILE has one text per line; by default the demo brand's examples.
"""

from __future__ import annotations

import bot  # noqa: F401  first: bot/__init__.py sets torch's OpenMP spinning, read once when torch loads

# isort: split
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.classify import texts_from  # the classification benchmark's texts
from bot.classify.encoder import TransformersEncoder, default_model_path
from bot.classify.tuning import TopLayers

ONNX = "ONNX Runtime, float32"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=Path, help="one text per line (default: the demo brand's examples)")
    parser.add_argument("--n", type=int, default=300, help="messages per round (default 300)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over the messages (default 3)")
    parser.add_argument("--tuned-layers", type=int, default=2, help="the copied top layers each message also runs")
    args = parser.parse_args()

    texts = texts_from(args.texts, args.n)
    encoders = {
        "PyTorch, float32": TransformersEncoder(default_model_path(), "float32"),
        "PyTorch, bfloat16": TransformersEncoder(default_model_path(), "bfloat16"),
        ONNX: TransformersEncoder(default_model_path(), "bfloat16"),  # the service's: its weights, exported
    }
    for encoder in encoders.values():  # an untuned copy costs what a tuned one does
        if args.tuned_layers:
            encoder.top = TopLayers.copied_from(encoder.model, args.tuned_layers).to(encoder.dtype).eval()
    with tempfile.TemporaryDirectory() as folder:
        encoders[ONNX].serve_lone(Path(folder))
    for encoder in encoders.values():
        encoder.embed(texts[:20])  # warm-up
    times: dict[str, list[float]] = {name: [] for name in encoders}
    for round_ in range(args.rounds):
        order = list(encoders.items())
        order = order[round_ % len(order) :] + order[: round_ % len(order)]
        for text in texts:
            for name, encoder in order:
                started = time.perf_counter()
                encoder.embed([text])
                times[name].append(time.perf_counter() - started)
    vectors = {name: np.vstack([encoder.embed([text]).general for text in texts]) for name, encoder in encoders.items()}
    for encoder in encoders.values():
        encoder.close()

    print(f"texts: {len(texts)} x {args.rounds} rounds   tuned layers: {args.tuned_layers}")
    print("| measurement | figure |")
    print("|---|---|")
    for name, seconds in times.items():
        quantiles = statistics.quantiles(seconds, n=100)
        print(f"| {name}, one message, p50 / p99 | {quantiles[49] * 1e3:.1f} ms / {quantiles[98] * 1e3:.1f} ms |")
    names = list(encoders)
    for fast, slow in ((names[1], names[0]), (ONNX, names[1]), (ONNX, names[0])):
        ratios = [a / b for a, b in zip(times[fast], times[slow], strict=True)]
        low, median, high = statistics.quantiles(ratios, n=4)
        print(f"| {fast} / {slow}, per message: median (quartiles) | {median:.2f} ({low:.2f}-{high:.2f}) |")
    for name in names[1:]:
        cosine = np.sum(vectors[names[0]] * vectors[name], axis=1)
        figure = f"{cosine.min():.5f} / {cosine.mean():.5f}"
        print(f"| general vectors, cosine {name} to {names[0]}: min / mean | {figure} |")


if __name__ == "__main__":
    main()
