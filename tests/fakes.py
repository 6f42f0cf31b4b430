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
from typing import Any, Generic, TypeVar

from aiohttp import web
from aiohttp.test_utils import TestServer

C = TypeVar("C")


@dataclass
class FakeLLM:
    """/v1/chat/completions, recording every request. It answers like a careful model: the first sentence of the
    first knowledge passage its system prompt offers, citing it (or answerable=false with none). It refuses
    (400) what a real server refuses: a wrong key, no model, no messages, malformed roles or response_format.

    Each request takes the next behaviour of `script`, then `mode` once the script is spent: "ok",
    "malformed" (prose, no JSON), "slow" (answers after `slow_s`), "429" (with Retry-After: `retry_after`),
    or any other status code as a string ("500", "503").
    """

    api_key: str = "test-key"
    mode: str = "ok"
    script: list[str] = field(default_factory=list)
    delay: float = 0.0  # before every answer
    slow_s: float = 30.0
    retry_after: str = "0"
    requests: list[dict[str, Any]] = field(default_factory=list)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    in_flight: int = 0
    most_in_flight: int = 0
    server: TestServer | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return await self._answer(request)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response({"error": {"message": "bad key", "type": "invalid_request_error"}}, status=401)
        body = await request.json()
        problem = self._invalid(body)
        if problem:
            return web.json_response({"error": {"message": problem}}, status=400)
        self.requests.append(body)
        self.started.set()
        behaviour = self.script.pop(0) if self.script else self.mode
        await asyncio.sleep(self.slow_s if behaviour == "slow" else self.delay)
        if behaviour == "429":
            error = {"error": {"message": "rate limited", "type": "rate_limit_error"}}
            return web.json_response(error, status=429, headers={"Retry-After": self.retry_after})
        if behaviour.isdigit():
            return web.json_response({"error": {"message": "boom"}}, status=int(behaviour))
        content = "Sure! Here is a reply without any JSON." if behaviour == "malformed" else self.answer(body)
        words = sum(len(m["content"].split()) for m in body["messages"])
        return web.json_response(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}
                ],
                "usage": {"prompt_tokens": words, "completion_tokens": 20, "total_tokens": words + 20},
            }
        )

    @staticmethod
    def _invalid(body: dict[str, Any]) -> str:
        messages = body.get("messages")
        if not body.get("model") or not isinstance(messages, list) or not messages:
            return "model and messages required"
        if any(
            m.get("role") not in {"system", "user", "assistant"} or not isinstance(m.get("content"), str)
            for m in messages
        ):
            return "bad message"
        form = body.get("response_format")
        if form is not None and form.get("type") not in {"json_object", "json_schema"}:
            return "bad response_format"
        if form is not None and form["type"] == "json_schema" and "schema" not in form.get("json_schema", {}):
            return "json_schema needs a schema"
        return ""

    @staticmethod
    def answer(body: dict[str, Any]) -> str:
        system = body["messages"][0]["content"]
        # "[file#section] File title: Section heading: text"
        passages = re.findall(r"^\[([a-z0-9-]+#[a-z0-9-]+)\] [^:\n]+: [^:\n]+: (.+)$", system, re.MULTILINE)
        name = re.search(r"^Address the customer as (\S+)\.$", system, re.MULTILINE)
        if not passages:
            reply = {"reply": "", "sources": [], "answerable": False}
        else:
            source, text = passages[0]
            first = re.split(r"(?<=\.) ", text)[0]
            if name:
                first = f"Hi {name.group(1)}, {first[0].lower()}{first[1:]}"
            reply = {"reply": f"{first} – Northwind Team", "sources": [source], "answerable": True}
        return json.dumps(reply)

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


@dataclass(kw_only=True)
class FakePlatform(Generic[C]):
    """What every fake platform API shares: a real server on 127.0.0.1 with the routes `routes()` adds, the
    calls it accepted (`record`), and a way to wait for them."""

    calls: list[C] = field(default_factory=list)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)
    server: TestServer | None = None
    url: str = ""  # the base URL, once started

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def record(self, call: C) -> None:
        async with self.arrived:
            self.calls.append(call)
            self.arrived.notify_all()

    async def wait_for(self, count: int, timeout: float = 60) -> list[C]:
        async with self.arrived:
            await asyncio.wait_for(self.arrived.wait_for(lambda: len(self.calls) >= count), timeout)
        return self.calls

    async def start(self) -> str:
        """Serve; the base URL, for the channel's API URL setting."""
        app = web.Application()
        self.routes(app)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        self.url = str(self.server.make_url("")).rstrip("/")
        return self.url

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()


@dataclass
class FakeTelegram(FakePlatform[tuple[str, dict[str, Any]]]):
    """The Bot API as its documentation states it: the token in the path, a JSON body, `text` of 1 to 4096
    characters, an int chat_id, reply_parameters with an int message_id. It answers as Telegram does, and can
    be told to answer 429 (with parameters.retry_after) or 5xx a few times first."""

    token: str
    fail: list[int] = field(default_factory=list)  # statuses to answer with, one per call, before succeeding

    @staticmethod
    def _error(status: int, description: str, **parameters: int) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if parameters:
            body["parameters"] = parameters
        headers = {"Retry-After": str(parameters["retry_after"])} if "retry_after" in parameters else {}
        return web.json_response(body, status=status, headers=headers)

    async def handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return self._error(401, "Unauthorized")
        if request.content_type != "application/json":
            return self._error(400, "Bad Request: expected a JSON body")
        body = await request.json()
        method = request.match_info["method"]
        if method == "sendMessage":
            text = body.get("text")
            if not isinstance(body.get("chat_id"), int) or not isinstance(text, str) or not 1 <= len(text) <= 4096:
                return self._error(400, "Bad Request: message text is empty or too long, or chat_id is not a number")
            reply_to = body.get("reply_parameters", {})
            if not isinstance(reply_to.get("message_id"), int):
                return self._error(400, "Bad Request: reply_parameters.message_id must be a number")
        if self.fail:
            status = self.fail.pop(0)
            if status == 429:
                return self._error(429, "Too Many Requests: retry after 1", retry_after=1)
            return self._error(status, "Internal Server Error")
        await self.record((method, body))
        result: Any = (
            True if method == "setWebhook" else {"message_id": 9000 + len(self.calls), "text": body.get("text")}
        )
        return web.json_response({"ok": True, "result": result})

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/bot{token}/{method}", self.handle)
