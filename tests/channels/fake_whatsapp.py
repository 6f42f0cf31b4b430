"""A fake of the WhatsApp Cloud API's send endpoint, checking what Meta's documentation says it checks."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes import FakePlatform

LIMIT = 4096  # text.body, in characters


def graph_error(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """Meta's error body, as the Cloud API answers it (type, code, error_data.details, fbtrace_id)."""
    error = {
        "message": f"(#{code}) {message}",
        "type": "OAuthException",
        "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": message},
        "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam",
    }
    return web.json_response({"error": error}, status=status, headers=headers)


def _problem(body: Any) -> str:
    """What the Cloud API would refuse in a text message's body, or "" if nothing."""
    if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
        return "messaging_product must be whatsapp"
    if body.get("recipient_type", "individual") != "individual":
        return "recipient_type must be individual"
    to, recipient = body.get("to"), body.get("recipient")
    if not (isinstance(to, str) and re.fullmatch(r"\+?\d{6,15}", to)) and not (
        isinstance(recipient, str) and re.fullmatch(r"[A-Z]{2}\.[A-Za-z0-9.]{1,128}", recipient)
    ):
        return "to must be a phone number, or recipient a business-scoped user id"
    if body.get("type") != "text":
        return "type must be text"
    text = body.get("text")
    if not isinstance(text, dict) or not isinstance(text.get("body"), str) or not text["body"]:
        return "text.body is required"
    if len(text["body"]) > LIMIT:
        return f"Param text['body'] must be at most {LIMIT} characters long."
    if not isinstance(text.get("preview_url", False), bool):
        return "text.preview_url must be a boolean"
    context = body.get("context")
    if context is not None and not (isinstance(context, dict) and isinstance(context.get("message_id"), str)):
        return "context.message_id must be a message id"
    return ""


@dataclass
class FakeWhatsApp(FakePlatform[tuple[str, dict[str, Any]]]):
    """POST /{version}/{phone number id}/messages with `Authorization: Bearer <token>` and a JSON body.

    A wrong token is a 401 (code 190), an unknown number a 400 (code 100, as Graph answers for an object that
    does not exist), a malformed body or a text over 4096 characters a 400 (code 100). `fail` holds what to
    answer next, one per call, before succeeding: an HTTP status (429 with code 80007 and
    X-Business-Use-Case-Usage saying 2 minutes; 5xx with a transient error) or a Graph error code answered in a
    400 as WhatsApp does (130429 throughput, 131047 outside the 24-hour window, any other). A success answers
    the next of `answer_ids` (then made-up wamids) and records (path, body) in `calls`.
    """

    token: str
    phone_number_id: str
    fail: list[int] = field(default_factory=list)
    answer_ids: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token")
        if not re.fullmatch(r"v\d+\.\d+", request.match_info["version"]):
            return graph_error(400, 2635, "Unknown version")
        if request.match_info["number"] != self.phone_number_id:
            return graph_error(400, 100, f"Unsupported post request. Object with ID '{request.match_info['number']}'")
        if request.content_type != "application/json":
            return graph_error(400, 100, "Invalid parameter: a JSON body is required")
        body = await request.json()
        problem = _problem(body)
        if problem:
            return graph_error(400, 100, problem)
        if self.fail:
            return self._failure(self.fail.pop(0))
        await self.record((request.path, body))
        wamid = self.answer_ids.pop(0) if self.answer_ids else self.made_up_id(len(self.calls))
        contact = {"input": body.get("to") or body["recipient"]}
        contact |= {"wa_id": body["to"].lstrip("+")} if "to" in body else {"user_id": body["recipient"]}
        return web.json_response({"messaging_product": "whatsapp", "contacts": [contact], "messages": [{"id": wamid}]})

    @staticmethod
    def made_up_id(n: int) -> str:
        """A wamid like Meta's: base64, so it may hold "+", "/" and "="."""
        return "wamid." + base64.b64encode(f"\x18\x0b\xfe\xff sent {n}".encode("latin-1")).decode()

    @staticmethod
    def _failure(answer: int) -> web.Response:
        if answer == 429:
            usage = {
                "102290129340398": [{"type": "whatsapp_business_management", "estimated_time_to_regain_access": 2}]
            }
            headers = {"X-Business-Use-Case-Usage": json.dumps(usage)}
            return graph_error(429, 80007, "Rate limit issues", headers)
        if answer >= 1000:
            return graph_error(400, answer, {130429: "Rate limit hit", 131047: "Re-engagement message"}.get(answer, ""))
        error = {
            "message": "An unexpected error has occurred.",
            "type": "OAuthException",
            "code": 2,
            "is_transient": True,
        }
        return web.json_response({"error": error}, status=answer)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/{version}/{number}/messages", self.handle)
