"""Fakes of what is remote: an OpenAI-compatible server and a platform that receives replies.

Both are real aiohttp servers on 127.0.0.1 that check what a real peer would check.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class FakeLLM:
    """/v1/chat/completions. Answers with the first knowledge passage its system prompt offers, and refuses
    (400) a request a real server would refuse: wrong key, no model, no messages, malformed roles."""

    api_key: str = "test-key"
    delay: float = 0.0
    fail_status: int | None = None
    malformed: bool = False
    requests: list[dict[str, object]] = field(default_factory=list)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    server: TestServer | None = None

    async def handle(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response({"error": {"message": "bad key", "type": "invalid_request_error"}}, status=401)
        body = await request.json()
        messages = body.get("messages")
        if not body.get("model") or not isinstance(messages, list) or not messages:
            return web.json_response({"error": {"message": "model and messages required"}}, status=400)
        if any(
            m.get("role") not in {"system", "user", "assistant"} or not isinstance(m.get("content"), str)
            for m in messages
        ):
            return web.json_response({"error": {"message": "bad message"}}, status=400)
        self.requests.append(body)
        self.started.set()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_status is not None:
            return web.json_response({"error": {"message": "boom"}}, status=self.fail_status)
        system = messages[0]["content"]
        ids = re.findall(r"^\[([a-z0-9-]+#[a-z0-9-]+)\]", system, re.MULTILINE)
        if self.malformed:
            content = "Sure! Here is a reply without any JSON."
        else:
            content = json.dumps(
                {
                    "reply": f"LLM reply using {ids[0] if ids else 'nothing'} – Northwind Team",
                    "sources": ids[:1],
                    "answerable": bool(ids),
                }
            )
        return web.json_response(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}
                ],
                "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
            }
        )

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.handle)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return str(self.server.make_url("/v1"))

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()


@dataclass
class Receiver:
    """The platform side of the generic channel: checks each reply's signature, records it, and can fail."""

    secret: bytes
    fail_times: int = 0
    fail_status: int = 503
    replies: list[dict[str, str]] = field(default_factory=list)
    rejected: int = 0
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)
    server: TestServer | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        expected = "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(request.headers.get("X-Bot-Signature", ""), expected):
            self.rejected += 1
            return web.Response(status=401)
        if self.fail_times > 0:
            self.fail_times -= 1
            return web.Response(status=self.fail_status, headers={"Retry-After": "0"})
        async with self.arrived:
            self.replies.append(json.loads(body))
            self.arrived.notify_all()
        return web.json_response({"ok": True})

    async def wait_for(self, count: int, timeout: float = 60) -> list[dict[str, str]]:
        async with self.arrived:
            await asyncio.wait_for(self.arrived.wait_for(lambda: len(self.replies) >= count), timeout)
        return self.replies

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/replies", self.handle)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return str(self.server.make_url("/replies"))

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()
