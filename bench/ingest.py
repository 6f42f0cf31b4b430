"""How fast the webhook takes messages in, next to the fastest an aiohttp handler can answer, in one run.

    python bench/ingest.py [--seconds 5] [--rounds 3] [--connections 64] [--redis URL] [--appendfsync everysec]

Two servers, each a child process on loopback, driven in turns by the same load generator (bench/load.py):
the ceiling, a bare aiohttp handler that reads the body and answers 202; and the product, `python -m bot web`
taking signed messages on /webhooks/generic (signature check, parse, dedup and enqueue in Redis, then 202).
Every request is a new message with its own id, so each one is a real durable write. Prints requests/s and
p50/p99 of each, round by round, and the ratio of the medians. Redis: an embedded server started for the run
(append-only file on, fsync as --appendfsync), or --redis URL (keys under a prefix of the run's own, deleted
afterwards).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Iterator
from functools import partial
from itertools import count
from pathlib import Path

from aiohttp import web
from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load import Child, Run, delete_prefix, free_port, generic_delivery, load, percentile, run
from bot.__main__ import event_loop
from bot.embedded import EmbeddedRedis

SECRET = "bench-ingest-secret"
TEXTS = [
    "Where is my order? It was due on Monday.",
    "Can I change the delivery address for order 4417?",
    "Your app keeps logging me out, what is going on",
    "Do you ship to Canada?",
    "I want a refund, the jacket arrived torn.",
]


def bare_server(port: int) -> None:
    """The ceiling: read the body, answer what the webhook answers, nothing else."""

    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"accepted": 1, "duplicates": 0}, status=202)

    app = web.Application()
    app.router.add_post("/webhooks/generic", handler)
    app.router.add_get("/readyz", lambda _: web.json_response({"status": "ready"}))  # type: ignore[arg-type, return-value]
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, loop=event_loop())


def deliveries(run_id: str) -> Iterator[bytes]:
    """Signed generic deliveries, each a new message (its own id) in one of 1,000 conversations."""
    for n in count():
        yield generic_delivery(SECRET, f"{run_id}-{n}", f"{run_id}-c{n % 1000}", TEXTS[n % len(TEXTS)], f"u{n % 1000}")


def describe(run: Run) -> str:
    others = {status: n for status, n in run.statuses.items() if status not in (200, 202)}
    errors = f" ({others} not 202)" if others else ""
    return (
        f"{run.rate:8.0f} req/s   p50 {percentile(run.latencies, 50):6.2f} ms   "
        f"p99 {percentile(run.latencies, 99):6.2f} ms   server CPU {run.cpu_us:5.1f} us/request{errors}"
    )


async def bench(args: argparse.Namespace, work: Path) -> None:
    embedded = None
    url = args.redis
    if url is None:
        embedded = EmbeddedRedis(work / "redis", port=free_port(), appendfsync=args.appendfsync)
        url = await embedded.start()
    prefix = f"bench-ingest-{free_port()}"
    redis = Redis.from_url(url, decode_responses=True)
    fsync = (await redis.config_get("appendfsync"))["appendfsync"]
    aof = (await redis.config_get("appendonly"))["appendonly"]
    bare_port, product_port = free_port(), free_port()
    bare = Child([sys.executable, __file__, "--bare", str(bare_port)], {}, work / "bare.log")
    product_env = {
        "BOT_REDIS_URL": url,
        "BOT_REDIS_PREFIX": prefix,
        "BOT_GENERIC_SECRET": SECRET,
        "BOT_DATA_DIR": str(work / "data"),
        "HF_HUB_OFFLINE": "1",
    }
    argv = [sys.executable, "-m", "bot", "web", "--host", "127.0.0.1", "--port", str(product_port)]
    product = Child(argv, product_env, work / "product.log")
    try:
        await bare.wait_ready(f"http://127.0.0.1:{bare_port}/readyz")
        await product.wait_ready(f"http://127.0.0.1:{product_port}/readyz")
        print(f"redis {url.split('@')[-1]}   appendonly {aof}   appendfsync {fsync}")
        print(f"{args.connections} connections, {args.seconds:.0f} s per measurement after 1 s of warm-up")
        requests = deliveries(prefix)
        results: dict[str, list[Run]] = {"bare": [], "product": []}
        for round_number in range(1, args.rounds + 1):
            for name, port, child in (("bare", bare_port, bare), ("product", product_port, product)):
                await load(port, requests, args.connections, 1.0)  # warm-up: connections, caches, scripts
                run = await load(port, requests, args.connections, args.seconds, child.process.pid)
                results[name].append(run)
                print(f"round {round_number}  {name:8} {describe(run)}")
        accepted = await redis.xlen(f"{prefix}:inbound")
    finally:
        bare.stop()
        product.stop()
        await delete_prefix(redis, prefix)
        await redis.aclose()
        if embedded is not None:
            await embedded.stop()

    ok = sum(run.statuses.get(202, 0) for run in results["product"])
    print(f"\nmessages in the inbound stream: {accepted} (the product answered 202 to {ok} of them, plus warm-ups)")
    rates = {name: statistics.median(run.rate for run in runs) for name, runs in results.items()}
    print("\n| server | requests/s (median of rounds) | p50 | p99 | server CPU per request |")
    print("|---|---|---|---|---|")
    for name, runs in results.items():
        latencies = [ms for run in runs for ms in run.latencies]
        label = "bare aiohttp handler" if name == "bare" else "product /webhooks/generic"
        print(
            f"| {label} | {rates[name]:.0f} | {percentile(latencies, 50):.2f} ms | {percentile(latencies, 99):.2f} ms "
            f"| {statistics.median(run.cpu_us for run in runs):.0f} us |"
        )
    print(f"| ratio product / bare (goal >= 0.6) | {rates['product'] / rates['bare']:.2f} | | | |")
    refused = sum(n for run in results["product"] for status, n in run.statuses.items() if status != 202)
    if refused:
        sys.exit(f"the product refused {refused} requests: the figures above are not of the intake; see its log")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each measurement (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="measurements of each server, alternating (default 3)")
    parser.add_argument("--connections", type=int, default=64, help="requests in flight (default 64)")
    parser.add_argument("--redis", help="an existing Redis URL (default: an embedded server started for the run)")
    parser.add_argument(
        "--appendfsync", choices=("everysec", "always"), default="everysec", help="the embedded Redis's fsync policy"
    )
    parser.add_argument("--bare", type=int, metavar="PORT", help=argparse.SUPPRESS)  # the child's own mode
    args = parser.parse_args()
    if args.bare is not None:
        bare_server(args.bare)
        return
    run(partial(bench, args), "bench-ingest")


if __name__ == "__main__":
    main()
