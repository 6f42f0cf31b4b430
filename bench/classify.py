"""How fast classification is, next to what the model itself can do, in one run on the same texts.

    python bench/classify.py [--texts FILE] [--n 2000] [--concurrency 64] [--tuned-layers 2] [--precision auto]
                             [--no-onnx]

Prints: the model's own texts/s (the encoder and the tuned copy of its top layers, nothing of the service
around them) at each batch size (and its best), the service classifier's texts/s with `--concurrency`
requests in flight (each one message, as the worker's callers are), their ratio (and the same ratio measured
in back-to-back pairs, which this VM's drift skews less), the latency of one message at a time (p50/p99; a
message alone runs in ONNX Runtime, as in the service, unless --no-onnx) with the encoder's own time for each
message right beside it (and the median of what the service adds), and what the intent model (head and
neighbours' vote), the risk detector and the language cost a text on their own (and the language check's
memory), and the service's texts/s without the second reading of answered messages' sentences (and how many
texts it read again). Beside the service's texts/s it prints the event loop's CPU a text under that load: with
every caller waiting for its own result, the model waits for that work between runs. FILE has one text per
line; by default the demo brand's example utterances from policies/intents.yaml are used.
"""

from __future__ import annotations

import bot  # noqa: F401  first: bot/__init__.py sets torch's OpenMP spinning, read once when torch loads

# isort: split
import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import get_args

import torch

from bot.classify import Classifier
from bot.classify.encoder import Embeddings, TransformersEncoder, default_model_path
from bot.classify.risk import RiskDetector
from bot.config import Precision
from bot.policy.load import load_policy
from bot.policy.schema import BrandPolicy
from bot.script import Languages

ROOT = Path(__file__).resolve().parent.parent


def texts_from(path: Path | None, n: int) -> list[str]:
    if path is not None:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        policy = load_policy(ROOT / "policies")
        lines = [text for spec in policy.intents.intents.values() for text in spec.examples]
    return [lines[i % len(lines)] for i in range(n)]


def raw_rates(
    encoder: TransformersEncoder, texts: list[str], sizes: tuple[int, ...] = (64, 1, 8, 16, 32, 64, 128)
) -> dict[int, float]:
    """The model alone: tokenizer and forward pass on batches in arrival order, no service code around it.
    The first size is a warm-up, measured again if it comes again."""
    rates = {}
    sample = texts[:1000]  # the same texts at every batch size
    with torch.inference_mode():
        for batch_size in sizes:
            started = time.perf_counter()
            for start in range(0, len(sample), batch_size):
                batch = encoder.tokenizer(
                    sample[start : start + batch_size],
                    padding=True,
                    truncation=True,
                    max_length=128,
                    return_tensors="pt",
                )
                out = encoder.model(**batch, output_hidden_states=encoder.top is not None)
                if encoder.top is not None:  # the tuned copy of the top layers is part of the model's work
                    encoder.top(out.hidden_states[encoder.top.start], batch["attention_mask"])
            rates[batch_size] = len(sample) / (time.perf_counter() - started)
    return rates


async def concurrent_rate(classifier: Classifier, texts: list[str], concurrency: int) -> float:
    return (await concurrent_load(classifier, texts, concurrency))[0]


async def concurrent_load(classifier: Classifier, texts: list[str], concurrency: int) -> tuple[float, float]:
    """Texts/s with `concurrency` single-message callers, and the event loop's CPU a text meanwhile (µs): under a
    closed loop the model waits for that work between runs, so it is what keeps the service below the model."""
    queue = list(reversed(texts))

    async def client() -> None:
        while queue:
            await classifier.classify_many([queue.pop()])

    started, cpu = time.perf_counter(), time.thread_time()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    loop_micros = (time.thread_time() - cpu) / len(texts) * 1e6
    return len(texts) / (time.perf_counter() - started), loop_micros


async def paired_ratios(
    classifier: Classifier, texts: list[str], batch_size: int, concurrency: int, rounds: int = 3
) -> list[float]:
    """The first measurements' ratio again, `rounds` times, each pair back to back: this VM's speed drifts by half
    within minutes, so one pass's ratio can be the drift's. As many texts as the first pass: fewer would weigh
    the service's ramp-up and tail (its first run is one text) more than in the figure they check."""
    encoder, ratios = classifier.encoder, []
    for _ in range(rounds):
        raw = await encoder.in_thread(raw_rates, encoder, texts, (batch_size,))
        ratios.append(await concurrent_rate(classifier, texts, concurrency) / raw[batch_size])
    return ratios


def first_reading_only(classifier: Classifier, policy: BrandPolicy) -> Classifier:
    """The same classifier without the second reading of answered messages' sentences."""
    whole = policy.risk.model_copy(update={"sentence_resemblance": None})
    return Classifier(
        classifier.encoder,
        classifier.intents,
        RiskDetector(whole, classifier.intents.labels),
        classifier.unknown_below,
        classifier.sentiment,
        answered=classifier.answered,
        languages=classifier.languages,
    )


async def read_again(once: Classifier, texts: list[str]) -> tuple[int, int]:
    """How many of `texts` the service reads a second time, sentence by sentence, and their sentences."""
    results, _ = await once.classify_many(texts)
    found = once.read_again(texts, results)
    return len(found), sum(len(parts) for parts in found.values())


async def latencies(classifier: Classifier, texts: list[str]) -> tuple[list[float], list[float]]:
    """Milliseconds of each message through the service's classifier, and through the encoder alone on its
    thread right beside it: paired, so what the service adds shows through this VM's drift."""
    service, encoder = [], []
    for text in texts:
        started = time.perf_counter()
        await classifier.classify_many([text])
        service.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        await classifier.encoder.in_thread(classifier.encoder.embed, [text])
        encoder.append((time.perf_counter() - started) * 1000)
    return service, encoder


def resident_mb() -> float:
    """The process's resident memory now, in MiB (Linux)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def per_text(work: Callable[[str], object], texts: list[str]) -> float:
    """Microseconds a text of `work` on the first 1,000 texts: what the service does per text on its event loop."""
    sample = texts[:1000]
    started = time.perf_counter()
    for text in sample:
        work(text)
    return (time.perf_counter() - started) / len(sample) * 1e6


def intent_model_cost(
    classifier: Classifier, vectors: Embeddings, sizes: tuple[int, ...] = (1, 256)
) -> dict[int, float]:
    """Microseconds a text of the intent model alone (the head and the neighbours' vote, on the event loop in
    the service), at each batch size: the part that grows with the brand's number of examples."""
    costs = {}
    for size in sizes:
        batch = vectors.rows(0, size)
        classifier.intents.probabilities(batch)  # warm-up
        rounds = max(1, 512 // size)
        started = time.perf_counter()
        for _ in range(rounds):
            classifier.intents.probabilities(batch)
        costs[size] = (time.perf_counter() - started) / rounds / size * 1e6
    return costs


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=Path, help="one text per line (default: the demo brand's examples)")
    parser.add_argument("--n", type=int, default=2000, help="texts per measurement (default 2000)")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight (default 64)")
    parser.add_argument("--cache", type=Path, default=Path("data/models"), help="trained-model cache folder")
    parser.add_argument(
        "--tuned-layers", type=int, default=2, help="encoder layers tuned to the intents, as BOT_INTENT_TUNED_LAYERS"
    )
    parser.add_argument(
        "--precision",
        choices=get_args(Precision),
        default="auto",
        help="the encoder's dtype, as BOT_ENCODER_PRECISION (default auto: bfloat16 where the CPU has it)",
    )
    parser.add_argument(
        "--no-onnx",
        dest="onnx",
        action="store_false",
        help="a message alone runs on PyTorch too, as with BOT_ENCODER_ONNX=false",
    )
    args = parser.parse_args()

    texts = texts_from(args.texts, args.n)
    started = time.perf_counter()
    encoder = TransformersEncoder(default_model_path(), args.precision)
    load_seconds = time.perf_counter() - started
    # Every model call runs on the encoder's one thread, as in the service (see TransformersEncoder.in_thread).
    policy = load_policy(ROOT / "policies")
    classifier = await encoder.in_thread(Classifier.build, encoder, policy, args.cache, args.tuned_layers)
    if args.onnx:
        await encoder.in_thread(encoder.serve_lone, args.cache)
    try:
        rates = await encoder.in_thread(raw_rates, encoder, texts)
        best_batch = max(rates, key=rates.__getitem__)
        await concurrent_rate(classifier, texts[:128], args.concurrency)  # warm-up
        service, loop_micros = await concurrent_load(classifier, texts, args.concurrency)
        once = first_reading_only(classifier, policy)
        without, _ = await concurrent_load(once, texts, args.concurrency)
        again, sentence_count = await read_again(once, texts)
        ratios = await paired_ratios(classifier, texts, best_batch, args.concurrency)
        single, alone = await latencies(classifier, texts[:300])
        vectors = await encoder.in_thread(encoder.embed, texts[:256])
    finally:
        encoder.close()

    print(
        f"texts: {len(texts)}   model load: {load_seconds:.1f} s   tuned layers: {args.tuned_layers}   "
        f"dtype: {str(encoder.dtype).removeprefix('torch.')}   "
        f"a message alone: {'ONNX Runtime, float32' if encoder.lone else 'PyTorch'}"
    )
    print("| measurement | figure |")
    print("|---|---|")
    for batch_size, rate in sorted(rates.items()):
        print(f"| raw encoder, batch {batch_size} | {rate:.0f} texts/s |")
    print(f"| raw encoder, best (batch {best_batch}) | {rates[best_batch]:.0f} texts/s |")
    print(f"| service classifier, {args.concurrency} concurrent single-message requests | {service:.0f} texts/s |")
    print(f"| the event loop's CPU a text meanwhile | {loop_micros:.0f} µs |")
    print(
        f"| the same without the second reading ({again} of {len(texts)} texts read again, "
        f"{sentence_count} sentences) | {without:.0f} texts/s |"
    )
    print(f"| ratio service / raw best (goal >= 0.9) | {service / rates[best_batch]:.2f} |")
    low, high = min(ratios), max(ratios)
    figure = f"{statistics.median(ratios):.2f} ({low:.2f}-{high:.2f})"
    print(f"| the same ratio in {len(ratios)} more back-to-back pairs: median (range) | {figure} |")
    quantiles = statistics.quantiles(single, n=100)
    print(f"| one message at a time, p50 / p99 (goal p50 < 15 ms) | {quantiles[49]:.1f} ms / {quantiles[98]:.1f} ms |")
    quantiles = statistics.quantiles(alone, n=100)
    print(f"| the encoder alone, the same messages, p50 / p99 | {quantiles[49]:.1f} ms / {quantiles[98]:.1f} ms |")
    added = statistics.median(s - e for s, e in zip(single, alone, strict=True))
    print(f"| what the service adds to a message (median of the pairs) | {added:.2f} ms |")
    examples = len(classifier.intents.by_general.targets)
    for size, micros in intent_model_cost(classifier, vectors).items():
        print(f"| intent model alone ({examples} examples), batch {size} | {micros:.0f} µs a text |")
    # The risk detector (patterns, card numbers, resemblance) with the intent model's reading of the first text.
    probabilities = classifier.intents.probabilities(vectors.rows(0, 1))[0]
    risk_micros = per_text(lambda text: classifier.risk.detect(text, probabilities), texts)
    print(f"| risk detector alone ({len(policy.risk.flags)} flags) | {risk_micros:.0f} µs a text |")
    if classifier.languages is not None:
        language_micros = per_text(classifier.languages.of, texts)
        print(f"| language alone (langid and the vocabulary) | {language_micros:.0f} µs a text |")
        before = resident_mb()
        another = Languages(classifier.encoder.tokenizer.get_vocab())  # what each process holds for it
        print(f"| the language check's memory | {resident_mb() - before:.0f} MiB |")
        del another


if __name__ == "__main__":
    asyncio.run(main())
