"""The benchmarks' shared parts: a lean HTTP/1.1 load generator, servers run as child processes, an embedded
Redis, resident memory and percentiles. The load generator is raw asyncio protocol code on pre-built requests,
so that it costs the machine far less per request than the servers it measures (an aiohttp client would be
the bottleneck on this 2-core machine, and would flatter every ratio)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import aiohttp
from redis.asyncio import Redis

from bot.__main__ import event_loop
from bot.channels.generic import SIGNATURE_HEADER, sign

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def percentile(values: Sequence[float], q: int) -> float:
    """The q-th percentile (1..99) of values."""
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else (values[0] if values else 0.0)


def rss_mib(pid: int) -> float:
    """Resident memory of a process (Linux /proc), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def request_bytes(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    """One keep-alive HTTP/1.1 POST, ready to write to the socket."""
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def generic_delivery(secret: str, message_id: str, conversation_id: str, text: str, author: str) -> bytes:
    """A signed POST /webhooks/generic of one message, as the load generator writes it."""
    body = json.dumps(
        {
            "id": message_id,
            "conversation_id": conversation_id,
            "text": text,
            "author": {"id": author, "handle": f"customer-{author}"},
            "created_at": "2026-11-24T10:00:00Z",
            "public": False,
        }
    ).encode()
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret.encode(), body)}
    return request_bytes("/webhooks/generic", body, headers)


@dataclass
class Run:
    """What one load run saw: each answered request's latency (ms) and its status."""

    seconds: float = 0.0
    cpu_seconds: float = 0.0  # the server's, while it ran
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    @property
    def cpu_us(self) -> float:
        """The server's CPU per answered request, in microseconds."""
        return self.cpu_seconds / len(self.latencies) * 1e6 if self.latencies else 0.0


class _Connection(asyncio.Protocol):
    """One keep-alive connection sending the next request as soon as the previous answer is complete."""

    def __init__(self, requests: Iterator[bytes], run: Run, until: float, done: asyncio.Future[None]) -> None:
        self.requests, self.run, self.until, self.done = requests, run, until, done
        self.buffer = b""
        self.sent_at = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio.Transport
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        request = next(self.requests, None)
        if request is None or time.perf_counter() >= self.until:
            self.transport.close()
            return
        self.sent_at = time.perf_counter()
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buffer[:end].decode("latin-1").split("\r\n")
        length = next(int(h.split(":", 1)[1]) for h in head if h.lower().startswith("content-length:"))
        if len(self.buffer) < end + 4 + length:
            return
        self.buffer = self.buffer[end + 4 + length :]
        status = int(head[0].split()[1])
        self.run.latencies.append((time.perf_counter() - self.sent_at) * 1000)
        self.run.statuses[status] = self.run.statuses.get(status, 0) + 1
        self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def load(
    port: int, requests: Iterator[bytes], connections: int, seconds: float, server_pid: int | None = None
) -> Run:
    """Keep `connections` requests in flight against 127.0.0.1:port for `seconds` (or until requests run out);
    with server_pid, also measure the CPU that server used meanwhile."""
    loop = asyncio.get_running_loop()
    run = Run()
    cpu = cpu_seconds(server_pid) if server_pid else 0.0
    started = time.perf_counter()
    until = started + seconds
    done = [loop.create_future() for _ in range(connections)]
    for future in done:
        await loop.create_connection(partial(_Connection, requests, run, until, future), "127.0.0.1", port)
    await asyncio.gather(*done)
    run.seconds = time.perf_counter() - started
    if server_pid:
        run.cpu_seconds = cpu_seconds(server_pid) - cpu
    return run


class Child:
    """A server in a child process, stopped with SIGTERM; its stderr goes to `log`."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name = " ".join(argv[1:])
        self.log = log
        with log.open("wb") as stream:
            self.process = subprocess.Popen(argv, env={**os.environ, **env}, stderr=stream, stdout=stream, cwd=ROOT)

    async def wait_ready(self, url: str, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    sys.exit(f"{self.name} exited with {self.process.returncode}:\n{self._tail()}")
                try:
                    async with session.get(url) as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        sys.exit(f"{self.name} not ready after {timeout_s:.0f} s:\n{self._tail()}")

    def _tail(self) -> str:
        """The end of the child's log (it lives in the run's temporary folder, gone when the run ends)."""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


async def delete_prefix(redis: Redis, prefix: str) -> None:
    """Remove a run's keys, and only those: the server may hold other data."""
    cursor = 0
    while True:
        cursor, keys = await redis.scan(cursor, match=f"{prefix}:*", count=1000)
        if keys:
            await redis.unlink(*keys)
        if cursor == 0:
            return


def run(bench: Callable[[Path], Awaitable[None]], name: str) -> None:
    """Run a benchmark on the service's event loop, in a temporary folder of its own."""
    with tempfile.TemporaryDirectory(prefix=f"{name}-") as work:
        loop = event_loop()
        try:
            loop.run_until_complete(bench(Path(work)))
        finally:
            loop.close()
