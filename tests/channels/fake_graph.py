"""A fake of the Graph API endpoints Messenger and Instagram replies use, checking what Meta documents."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.fakes import FakePlatform

DATA = Path(__file__).parent / "data"
MESSENGER_LIMIT = 2000  # message.text, characters (Send API reference)
INSTAGRAM_DM_LIMIT = 1000  # message.text, bytes of UTF-8 (as integrators report it)
COMMENT_LIMITS = {"comments": 8000, "replies": 2200}  # a Page comment, an Instagram comment
MESSAGING_TYPES = {"RESPONSE", "UPDATE", "MESSAGE_TAG"}
TAGS = {"HUMAN_AGENT", "CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE", "ACCOUNT_UPDATE"}
THROTTLE_CODES = {4, 17, 32, 613, 80001, 80002, 80006}


def graph_error(status: int, error: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    """Meta's error body: {"error": {message, type, code, error_subcode, fbtrace_id}}."""
    body = {"type": "OAuthException", "fbtrace_id": "AbCdEfGh123"} | error
    return web.json_response({"error": body}, status=status, headers=headers)


def invalid(message: str) -> web.Response:
    return graph_error(400, {"message": f"(#100) {message}", "code": 100})


@dataclass(frozen=True)
class GraphCall:
    path: str
    owner: str  # whose token authorised it: "page" or "instagram"
    body: dict[str, Any]


@dataclass
class FakeGraph(FakePlatform[GraphCall]):
    """POST /{version}/me/messages (the Send API, for a Page or an Instagram account, by token),
    /{version}/{comment-id}/comments (a Page's public reply) and /{version}/{comment-id}/replies (Instagram's).

    Each call needs `Authorization: Bearer <token>` of the Page or the Instagram account (else the published
    "Invalid OAuth access token." error, code 190), the configured version and a JSON body of the documented
    shape: a recipient id (or comment_id), message.text within the limit (Messenger 2000 characters, Instagram
    1000 bytes), Messenger's messaging_type (MESSAGE_TAG with a tag), a comment's non-empty `message`. What
    breaks a rule is a 400 with code 100. `fail` holds what to answer next, one per call, before succeeding:
    429 is throttling as Graph signals it (a 400 with a throttling code, 80006 for the Page, 4 for Instagram,
    and X-Business-Use-Case-Usage saying `throttle_minutes`), another status a transient error at that
    status, a dict an error object answered in a 400 (with the usage header if its code throttles).
    """

    page_token: str
    instagram_token: str
    version: str = "v23.0"
    throttle_minutes: int = 2
    fail: list[int | dict[str, Any]] = field(default_factory=list)

    def _owner(self, request: web.Request) -> str | None:
        tokens = {f"Bearer {self.page_token}": "page", f"Bearer {self.instagram_token}": "instagram"}
        return tokens.get(request.headers.get("Authorization", ""))

    async def handle(self, request: web.Request) -> web.Response:
        owner = self._owner(request)
        if owner is None:
            published = json.loads((DATA / "meta_graph_error.json").read_text())["response"]["body"]["error"]
            return graph_error(400, published)
        if request.match_info["version"] != self.version:
            return invalid(f"Unknown path components: /{request.match_info['version']}")
        if request.content_type != "application/json":
            return invalid("a JSON body is required")
        body = await request.json()
        node, edge = request.match_info["node"], request.match_info["edge"]
        problem = self._problem(owner, node, edge, body)
        if problem:
            return invalid(problem)
        if self.fail:
            return self._failure(owner, self.fail.pop(0))
        await self.record(GraphCall(request.path, owner, body))
        n = len(self.calls)
        if edge == "messages":
            recipient = body["recipient"].get("id") or f"igsid-of-{body['recipient']['comment_id']}"
            return web.json_response({"recipient_id": recipient, "message_id": f"m_sent{n}"})
        return web.json_response({"id": f"{node}_reply{n}"})

    @staticmethod
    def _problem(owner: str, node: str, edge: str, body: Any) -> str:
        """What Graph would refuse in this call, or "" if nothing."""
        if not isinstance(body, dict):
            return "the body must be a JSON object"
        if (node, edge) == ("me", "messages"):
            return _message_problem(owner, body)
        if (edge, owner) not in {("comments", "page"), ("replies", "instagram")} or node == "me":
            return f"Unsupported post request. Object with ID '{node}' does not support this operation ({edge})"
        text = body.get("message")
        if set(body) != {"message"} or not isinstance(text, str) or not text.strip():
            return "message is required (the comment's text)"
        if len(text) > COMMENT_LIMITS[edge]:
            return f"message must be at most {COMMENT_LIMITS[edge]} characters"
        return ""

    def _failure(self, owner: str, answer: int | dict[str, Any]) -> web.Response:
        if answer == 429:
            code = 80006 if owner == "page" else 4
            answer = {"message": f"(#{code}) Too many calls", "code": code, "is_transient": True}
        if isinstance(answer, dict):
            usage = [{"type": "messenger", "call_count": 100, "estimated_time_to_regain_access": self.throttle_minutes}]
            throttled = answer.get("code") in THROTTLE_CODES
            return graph_error(
                400, answer, {"X-Business-Use-Case-Usage": json.dumps({"1234": usage})} if throttled else None
            )
        return graph_error(answer, {"message": "An unexpected error has occurred.", "code": 2, "is_transient": True})

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/{version}/{node}/{edge}", self.handle)


def _message_problem(owner: str, body: dict[str, Any]) -> str:
    """The Send API's checks: a recipient, a text within the platform's limit, a valid messaging type."""
    recipient, message = body.get("recipient"), body.get("message")
    if not isinstance(recipient, dict) or len(recipient) != 1:
        return "recipient must hold one of id or comment_id"
    if not all(key in {"id", "comment_id"} and isinstance(value, str) and value for key, value in recipient.items()):
        return "recipient.id (or comment_id) must be a non-empty string"
    if not isinstance(message, dict) or not isinstance(message.get("text"), str) or not message["text"]:
        return "message.text is required"
    text: str = message["text"]
    if owner == "page" and len(text) > MESSENGER_LIMIT:
        return f"param message[text] must be at most {MESSENGER_LIMIT} characters"
    if owner == "instagram" and len(text.encode()) > INSTAGRAM_DM_LIMIT:
        return f"message.text must be at most {INSTAGRAM_DM_LIMIT} bytes"
    kind, tag = body.get("messaging_type"), body.get("tag")
    if kind is None and owner == "page" and "id" in recipient:
        return "messaging_type is required"
    if kind is not None and kind not in MESSAGING_TYPES:
        return f"messaging_type must be one of {sorted(MESSAGING_TYPES)}"
    if (kind == "MESSAGE_TAG") != (tag is not None) or (tag is not None and tag not in TAGS):
        return "a MESSAGE_TAG message needs a valid tag, and only it may carry one"
    return ""
