"""Running the real `python -m bot ...` as a child process, as a user would."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bot.config import Settings
from tests.conftest import ROOT, TOKEN, free_port
from tests.fakes import FakeLLM

AUTH = {"Authorization": f"Bearer {TOKEN}"}
FAQS = [  # questions the demo brand answers alone
    "How long does standard delivery take?",
    "What time do your stores open on Sunday?",
    "Do you take Apple Pay?",
    "How do I return a jacket?",
    "How long is a gift card valid for?",
    "Where can I find your size guide?",
]


@dataclass
class Service:
    process: asyncio.subprocess.Process
    url: str
    log: Path

    async def wait_ready(self, timeout: float = 120) -> None:
        """Poll /readyz until 200; fail with the log if the process dies or never gets ready."""
        async with aiohttp.ClientSession() as session:
            for _ in range(int(timeout * 4)):
                if self.process.returncode is not None:
                    raise AssertionError(f"service exited {self.process.returncode}:\n{self.log.read_text()}")
                try:
                    async with session.get(self.url + "/readyz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:  # not listening yet
                    pass
                await asyncio.sleep(0.25)
        raise AssertionError(f"service not ready after {timeout} s:\n{self.log.read_text()}")

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.returncode is None:
            self.process.send_signal(sig)
        return await asyncio.wait_for(self.process.wait(), 60)


async def start(command: str, port: int, env: dict[str, str], log: Path) -> Service:
    full_env = {key: value for key, value in os.environ.items() if not key.startswith("BOT_")}
    full_env.update({"HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **env})
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            command,
            "--port",
            str(port),
            cwd=ROOT,
            env=full_env,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
        )
    return Service(process, f"http://127.0.0.1:{port}", log)


@asynccontextmanager
async def serving(data: Path, brand_models: Path, policies_dir: Path, env: dict[str, str]) -> AsyncIterator[Service]:
    """`python -m bot serve` with its embedded Redis, the test brand's models and policies, the review token
    TOKEN, and `env` (a channel's settings); ready when entered, and it must stop cleanly, without a traceback."""
    full_env = {
        "BOT_DATA_DIR": str(data / "data"),
        "BOT_MODELS_DIR": str(brand_models),
        "BOT_POLICIES_DIR": str(policies_dir),
        "BOT_REVIEW_TOKENS": TOKEN,
        **env,
    }
    service = await start("serve", free_port(), full_env, data / "serve.log")
    try:
        await service.wait_ready()
        yield service
    finally:
        code = await service.stop()
    log = service.log.read_text()
    assert code == 0, log
    assert "Traceback" not in log, log


async def wait_status_of(
    service: Service, channel: str, message_id: str, statuses: set[str], timeout: float = 60
) -> dict[str, object]:
    state: dict[str, object] = {}
    for _ in range(int(timeout * 10)):
        async with (
            aiohttp.ClientSession(headers=AUTH) as session,
            session.get(f"{service.url}/api/messages/{channel}/{message_id}") as response,
        ):
            if response.status == 200:
                state = await response.json()
                if state["status"] in statuses:
                    return state
        await asyncio.sleep(0.1)
    raise AssertionError(f"{message_id} never reached {statuses}; last: {state}")


async def answered(service: Service, surface: str, message_id: str) -> None:
    """Wait until a message is sent or in review; approve its draft as a reviewer would if it is in review
    (the brand's policy may hold a public mention for a person)."""
    state = await wait_status_of(service, surface, message_id, {"sent", "in_review"})
    if state["status"] == "in_review":
        async with (
            aiohttp.ClientSession(headers=AUTH) as session,
            session.post(f"{service.url}/api/reviews/{state['case_id']}/approve") as response,
        ):
            assert response.status == 200, await response.text()


async def shared_redis_env(
    settings: Settings, data: Path, brand_models: Path, policies_dir: Path, llm: FakeLLM | None = None
) -> dict[str, str]:
    """Settings for `web` and `worker` processes on the test's Redis and key prefix, drafting with `llm` (None:
    the offline drafter)."""
    env = {
        "BOT_REDIS_URL": settings.redis_url or "",
        "BOT_REDIS_PREFIX": settings.redis_prefix,
        "BOT_DATA_DIR": str(data),
        "BOT_MODELS_DIR": str(brand_models),
        "BOT_POLICIES_DIR": str(policies_dir),
    }
    if llm is not None:
        env |= {"BOT_LLM_BASE_URL": await llm.start(), "BOT_LLM_API_KEY": llm.api_key}
    return env
