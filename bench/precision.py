"""float32 against bfloat16 for the encoder, one message at a time, measured in pairs.

    python bench/precision.py [--texts FILE] [--n 300] [--rounds 3] [--tuned-layers 2]

This VM's speed drifts by half within minutes, so two benchmark runs one after the other do not compare
dtypes; here each message goes through both encoders back to back (in alternating order), and the median of
the per-message time ratios is the figure. Prints each dtype's p50/p99, that ratio, and how far bfloat16
moves the vectors (cosine to float32). FILE has one text per line; by default the demo brand's examples.
"""

from __future__ import annotations

import bot  # noqa: F401  first: bot/__init__.py sets torch's OpenMP spinning, read once when torch loads

# isort: split
import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.classify import texts_from  # the classification benchmark's texts
from bot.classify.encoder import TransformersEncoder, default_model_path
from bot.classify.tuning import TopLayers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=Path, help="one text per line (default: the demo brand's examples)")
    parser.add_argument("--n", type=int, default=300, help="messages per round (default 300)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over the messages (default 3)")
    parser.add_argument("--tuned-layers", type=int, default=2, help="the copied top layers each message also runs")
    args = parser.parse_args()

    texts = texts_from(args.texts, args.n)
    encoders = {dtype: TransformersEncoder(default_model_path(), dtype) for dtype in ("float32", "bfloat16")}
    for encoder in encoders.values():  # an untuned copy costs what a tuned one does
        if args.tuned_layers:
            encoder.top = TopLayers.copied_from(encoder.model, args.tuned_layers).to(encoder.dtype).eval()
        encoder.embed(texts[:20])  # warm-up
    times: dict[str, list[float]] = {dtype: [] for dtype in encoders}
    for round_ in range(args.rounds):
        for text in texts:
            order = list(encoders.items())
            for dtype, encoder in order if round_ % 2 == 0 else reversed(order):
                started = time.perf_counter()
                encoder.embed([text])
                times[dtype].append(time.perf_counter() - started)
    exact, rounded = (encoders[dtype].embed(texts) for dtype in ("float32", "bfloat16"))
    for encoder in encoders.values():
        encoder.close()

    print(f"texts: {len(texts)} x {args.rounds} rounds   tuned layers: {args.tuned_layers}")
    print("| measurement | figure |")
    print("|---|---|")
    for dtype, seconds in times.items():
        quantiles = statistics.quantiles(seconds, n=100)
        print(f"| {dtype}, one message, p50 / p99 | {quantiles[49] * 1e3:.1f} ms / {quantiles[98] * 1e3:.1f} ms |")
    ratios = [half / full for full, half in zip(times["float32"], times["bfloat16"], strict=True)]
    low, median, high = statistics.quantiles(ratios, n=4)
    print(f"| bfloat16 / float32, per message: median (quartiles) | {median:.2f} ({low:.2f}-{high:.2f}) |")
    cosine = np.sum(exact.general * rounded.general, axis=1)
    print(f"| general vectors, cosine bfloat16 to float32: min / mean | {cosine.min():.5f} / {cosine.mean():.5f} |")


if __name__ == "__main__":
    main()
