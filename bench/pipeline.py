"""Messages through the whole service, next to what the encoder alone can do, in one run.

    python bench/pipeline.py [--n 2000] [--texts FILE] [--llm-delay-ms 500] [--redis URL]

The service runs as in production: a `web` process, a `worker` process and Redis (embedded, started for the
run, unless --redis). Each message is a signed delivery to /webhooks/generic in a conversation of its own; the
replies go to a receiver in this process, which notes when each arrives. Three phases of N messages, sent as
one burst each: twice with the offline drafter (the second shows whether memory grows with the messages
processed), then, with a new worker, drafting with a fake OpenAI-compatible model that answers after
--llm-delay-ms. A phase ends when both streams are empty (every message has its reply or review case).

Prints, per phase, messages/s end to end and from the first reply to the last (which leaves out the demo
brand's 3 s coalescing window: a fresh burst's first batch waits that long by design), first-response
p50/p99 (send to reply, including that window and the queueing of a burst), the raw encoder's texts/s
measured here on the same texts (the model and the tuned copy of its top layers, nothing else: see
bench/classify.py), the ratio pipeline/encoder, each process's CPU per message next to the raw encoder's CPU
per text (what the service spends around the model), and the resident memory of each process at start and
after each phase.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from aiohttp import web
from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.classify import raw_rates, texts_from
from bench.ingest import SECRET
from bench.load import (
    ROOT,
    Child,
    cpu_seconds,
    delete_prefix,
    free_port,
    generic_delivery,
    load,
    percentile,
    rss_mib,
    run,
)
from bot.classify import Classifier
from bot.classify.encoder import TransformersEncoder, default_model_path
from bot.embedded import EmbeddedRedis
from bot.policy.load import load_policy
from tests.fakes import FakeLLM, Receiver

TUNED_LAYERS = 2  # BOT_INTENT_TUNED_LAYERS's default


@dataclass
class TimedReceiver(Receiver):
    """The platform side (tests/fakes.py's receiver, checking signatures), noting when each reply arrives."""

    arrivals: dict[str, float] = field(default_factory=dict)

    async def handle(self, request: web.Request) -> web.Response:
        response = await super().handle(request)
        if response.status == 200:  # aiohttp keeps the body: it can be read again
            self.arrivals.setdefault(json.loads(await request.read())["in_reply_to"], time.perf_counter())
        return response


def deliveries(texts: list[str], phase: str, sent: dict[str, float]) -> Iterator[bytes]:
    """One signed delivery per text, each in its own conversation; notes when each is handed to the socket."""
    for n, text in enumerate(texts):
        message_id = f"{phase}-{n}"
        sent[message_id] = time.perf_counter()
        yield generic_delivery(SECRET, message_id, message_id, text, f"u{n}")


async def drained(redis: Redis, prefix: str) -> bool:
    """Both streams empty: a finished entry is deleted with its acknowledgement, so an entry left is work left."""
    return not await redis.xlen(f"{prefix}:inbound") and not await redis.xlen(f"{prefix}:outbox")


@dataclass
class Phase:
    name: str
    rate: float  # messages/s from the first send until both streams are empty
    steady: float  # messages/s from the first reply to the last: without the coalescing window's wait at the start
    replies: int
    cpu_ms: dict[str, float]  # each process's CPU per message
    first_response: list[float]


async def run_phase(
    name: str, texts: list[str], web_port: int, redis: Redis, prefix: str, receiver: TimedReceiver, pids: dict[str, int]
) -> Phase:
    sent: dict[str, float] = {}
    cpu = {process: cpu_seconds(pid) for process, pid in pids.items()}
    started = time.perf_counter()
    run = await load(web_port, deliveries(texts, name, sent), 32, 3600)
    if run.statuses != {202: len(texts)}:
        sys.exit(f"{name}: the webhook answered {run.statuses}, not 202 to each of {len(texts)} messages")
    while not await drained(redis, prefix):
        await asyncio.sleep(0.05)
    seconds = time.perf_counter() - started
    cpu_ms = {process: (cpu_seconds(pid) - cpu[process]) * 1000 / len(texts) for process, pid in pids.items()}
    arrivals = [receiver.arrivals[m] for m in sent if m in receiver.arrivals]
    latencies = [(receiver.arrivals[m] - sent[m]) * 1000 for m in sent if m in receiver.arrivals]
    steady = len(texts) / (max(arrivals) - min(arrivals)) if len(arrivals) > 1 else 0.0
    return Phase(name, len(texts) / seconds, steady, len(latencies), cpu_ms, latencies)


async def encoder_rate(texts: list[str], cache: Path) -> tuple[float, float]:
    """The raw encoder, as bench/classify.py measures it, at the best of the batch sizes the worker uses; and
    the CPU it used a text (ms, all its threads), over all those sizes."""
    encoder = TransformersEncoder(default_model_path())
    try:
        policy = load_policy(ROOT / "policies")
        await encoder.in_thread(Classifier.build, encoder, policy, cache, TUNED_LAYERS)
        sizes = (32, 16, 32, 64)
        cpu = time.process_time()  # this process does nothing else meanwhile
        rates = await encoder.in_thread(raw_rates, encoder, texts, sizes)
        cpu_ms = (time.process_time() - cpu) * 1000 / (len(sizes) * min(len(texts), 1000))
    finally:
        encoder.close()
    return max(rates.values()), cpu_ms


async def bench(args: argparse.Namespace, work: Path) -> None:
    texts = texts_from(args.texts, args.n)
    embedded = None
    url = args.redis
    if url is None:
        embedded = EmbeddedRedis(work / "redis", port=free_port())
        url = await embedded.start()
    prefix = f"bench-pipeline-{free_port()}"
    redis = Redis.from_url(url, decode_responses=True)
    receiver, llm = TimedReceiver(SECRET.encode()), FakeLLM(delay=args.llm_delay_ms / 1000)
    env = {
        "BOT_REDIS_URL": url,
        "BOT_REDIS_PREFIX": prefix,
        "BOT_GENERIC_SECRET": SECRET,
        "BOT_GENERIC_REPLY_URL": await receiver.start(),
        "BOT_SEND_RATE": "generic=100000",  # the receiver takes all: no platform's pacing in the figures
        "BOT_MODELS_DIR": str(args.cache.resolve()),
        "BOT_DATA_DIR": str(work / "data"),
        "BOT_REVIEW_TOKENS": "bench-reviewer-token-0123456789",
        "HF_HUB_OFFLINE": "1",
    }
    web_port, worker_port = free_port(), free_port()
    server = [sys.executable, "-m", "bot"]
    children = [Child([*server, "web", "--port", str(web_port)], env, work / "web.log")]
    memory: list[tuple[str, dict[str, float]]] = []
    phases: list[Phase] = []

    def pids(worker: Child) -> dict[str, int]:
        found = {"web": children[0].process.pid, "worker": worker.process.pid}
        if embedded is not None and embedded.process is not None:
            found["redis"] = embedded.process.pid
        return found

    def note(when: str, worker: Child) -> None:
        memory.append((when, {name: rss_mib(pid) for name, pid in pids(worker).items()}))

    try:
        await children[0].wait_ready(f"http://127.0.0.1:{web_port}/readyz")
        for drafter, names in (("offline", ("offline 1", "offline 2")), ("llm", ("fake LLM",))):
            extra = {"BOT_LLM_BASE_URL": await llm.start(), "BOT_LLM_API_KEY": llm.api_key} if drafter == "llm" else {}
            worker = Child([*server, "worker", "--port", str(worker_port)], env | extra, work / f"{drafter}.log")
            children.append(worker)
            await worker.wait_ready(f"http://127.0.0.1:{worker_port}/readyz", timeout_s=600)
            note(f"{drafter} worker ready", worker)
            for name in names:
                processes = pids(worker) | {"bench (load, receiver)": os.getpid()}
                phases.append(await run_phase(name, texts, web_port, redis, prefix, receiver, processes))
                note(f"after {name}", worker)
            worker.stop()
        raw, raw_cpu_ms = await encoder_rate(texts, args.cache)
    finally:
        for child in children:
            child.stop()
        if llm.server is not None:
            await llm.close()
        await receiver.close()
        await delete_prefix(redis, prefix)
        await redis.aclose()
        if embedded is not None:
            await embedded.stop()

    report(len(texts), args.llm_delay_ms, phases, (raw, raw_cpu_ms), memory)


def report(
    n: int, delay_ms: int, phases: list[Phase], encoder: tuple[float, float], memory: list[tuple[str, dict[str, float]]]
) -> None:
    raw, raw_cpu_ms = encoder
    print(f"{n} messages a phase, each a burst; fake model delay {delay_ms} ms")
    print(
        "\n| phase | messages/s | after the window | replies | first response p50 | p99 "
        "| ratio to the raw encoder | after the window |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for phase in phases:
        p50, p99 = percentile(phase.first_response, 50), percentile(phase.first_response, 99)
        print(
            f"| {phase.name} | {phase.rate:.0f} | {phase.steady:.0f} | {phase.replies} | {p50 / 1000:.2f} s "
            f"| {p99 / 1000:.2f} s | {phase.rate / raw:.2f} | {phase.steady / raw:.2f} |"
        )
    print(f"| raw encoder (same texts, best batch) | {raw:.0f} texts/s | | | | | goal: offline >= 0.8 | |")
    processes = list(phases[0].cpu_ms)
    print("\n| CPU per message (ms) | " + " | ".join(processes) + " | all |")
    print("|---|" + "---|" * (len(processes) + 1))
    for phase in phases:
        cells = " | ".join(f"{phase.cpu_ms[p]:.2f}" for p in processes)
        print(f"| {phase.name} | {cells} | {sum(phase.cpu_ms.values()):.2f} |")
    print(f"| raw encoder, a text (all its threads) | | {raw_cpu_ms:.2f} |" + " |" * (len(processes) - 1))
    names = list(memory[0][1])
    print("\n| resident memory (MiB) | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for when, sizes in memory:
        print(f"| {when} | " + " | ".join(f"{sizes.get(n, 0):.0f}" for n in names) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000, help="messages a phase (default 2000)")
    parser.add_argument("--texts", type=Path, help="one text per line (default: the demo brand's examples)")
    parser.add_argument("--llm-delay-ms", type=int, default=500, help="the fake model's answer time (default 500)")
    parser.add_argument("--redis", help="an existing Redis URL (default: an embedded server started for the run)")
    parser.add_argument("--cache", type=Path, default=ROOT / "data" / "models", help="trained-model cache folder")
    args = parser.parse_args()
    run(partial(bench, args), "bench-pipeline")


if __name__ == "__main__":
    main()
