"""A fake Chatwoot Application API, as an Agent Bot uses it (chatwoot_agent_bot_api.json).

It checks what Chatwoot checks: the `api_access_token` header (not a bearer token), the account and
conversation in the path (a bot reaches only the conversations of its account), a JSON body whose fields have
the swagger's types, content of at most 150,000 characters, and toggle_status's status enum. It keeps each
conversation's status, answers as Chatwoot does, and can be told to answer 429 (rack-attack) or 5xx first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes import FakePlatform

MAX_CONTENT = 150_000
STATUSES = {"open", "resolved", "pending", "snoozed"}
MESSAGE_FIELDS = {"content", "message_type", "private", "content_type", "content_attributes", "template_params"}
CONTENT_TYPES = {"text", "input_text", "input_textarea", "input_email", "input_select", "cards", "form", "article"}


@dataclass(frozen=True)
class Call:
    """One accepted request: which conversation, which action, the token it carried and its JSON body."""

    account: int
    conversation: int
    action: str  # "messages" or "toggle_status"
    token: str
    body: dict[str, Any]


@dataclass
class FakeChatwoot(FakePlatform[Call]):
    token: str
    conversations: dict[tuple[int, int], str] = field(default_factory=dict)  # (account, display id): status
    requests: int = 0  # every request, refused ones too
    fail: list[int] = field(default_factory=list)  # statuses to answer with, one per call, before succeeding
    retry_after: int | None = 30  # the 429's Retry-After; None: rack-attack's default, which sends none

    def _problem(self, request: web.Request, body: Any) -> tuple[int, str] | None:
        """What Chatwoot would refuse in this request (status and message), if anything."""
        if request.headers.get("api_access_token") != self.token:
            return 401, "Invalid Access Token"
        key = (int(request.match_info["account"]), int(request.match_info["conversation"]))
        if key not in self.conversations:
            return 404, "Resource could not be found"
        if not isinstance(body, dict):
            return 400, "expected a JSON object"
        if request.match_info["action"] == "toggle_status":
            if body.get("status") not in STATUSES or not set(body) <= {"status", "snoozed_until"}:
                return 422, f"status must be one of {sorted(STATUSES)}"
            return None
        content = body.get("content")
        if not set(body) <= MESSAGE_FIELDS:
            return 422, f"unknown fields {sorted(set(body) - MESSAGE_FIELDS)}"
        if not isinstance(content, str) or not content or len(content) > MAX_CONTENT:
            return 422, f"content must be text of 1 to {MAX_CONTENT} characters"
        if body.get("message_type") != "outgoing" or not isinstance(body.get("private", False), bool):
            return 422, "an agent bot's reply is message_type outgoing, private a boolean"
        if body.get("content_type", "text") not in CONTENT_TYPES:
            return 422, "content_type is not one of Chatwoot's"
        return None

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        if request.content_type != "application/json":
            return web.json_response({"error": "expected a JSON body"}, status=400)
        try:
            body = await request.json()
        except ValueError:  # not JSON: Rails answers 400
            return web.json_response({"error": "invalid JSON"}, status=400)
        problem = self._problem(request, body)
        if problem is not None:
            return web.json_response({"error": problem[1]}, status=problem[0])
        if self.fail:
            status = self.fail.pop(0)
            if status == 429:  # rack-attack's throttled response
                headers = {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}
                return web.Response(status=429, text="Retry later\n", headers=headers)
            return web.json_response({"status": status, "error": "Internal Server Error"}, status=status)
        account, conversation = int(request.match_info["account"]), int(request.match_info["conversation"])
        action = request.match_info["action"]
        await self.record(Call(account, conversation, action, request.headers["api_access_token"], body))
        if action == "toggle_status":
            self.conversations[account, conversation] = body["status"]
            payload = {"success": True, "current_status": body["status"], "conversation_id": conversation}
            return web.json_response({"meta": {}, "payload": payload})
        message = {
            "id": 5000 + len(self.calls),
            "content": body["content"],
            "account_id": account,
            "conversation_id": conversation,
            "message_type": 1,  # the API answers with the enum's number
            "content_type": body.get("content_type", "text"),
            "private": body.get("private", False),
            "created_at": int(time.time()),
        }
        return web.json_response(message)

    def routes(self, app: web.Application) -> None:
        path = r"/api/v1/accounts/{account:\d+}/conversations/{conversation:\d+}/{action:messages|toggle_status}"
        app.router.add_post(path, self.handle)
