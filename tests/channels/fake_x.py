"""A fake of X API v2's reply endpoints (create a post, send a DM), checking what X's documentation says."""

from __future__ import annotations

import re
import time
import unicodedata
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, NamedTuple

from aiohttp import web

from tests.fakes import FakePlatform

POST_LIMIT = 280  # weighted, per docs.x.com "Counting characters"
DM_LIMIT = 10_000
WINDOW_S = 900  # the 15-minute rate-limit window
LIMITS = {"tweets": 100, "dm": 15}  # per user per window (docs.x.com rate-limit table)
# twitter-text v3: code points in these ranges weigh 1, all others 2; a link weighs 23 whatever its length.
LIGHT = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))
LINK = re.compile(r"https?://\S+")
RATE_LIMITED = {"errors": [{"code": 88, "message": "Rate limit exceeded"}]}  # x_rate_limit_429.json's body
NOT_MENTIONED = (
    "Reply to this conversation is not allowed because you have not been mentioned or otherwise engaged by the "
    "author of the post you are replying to."
)


def weighted(text: str) -> int:
    """A post's length as X counts it."""
    text = unicodedata.normalize("NFC", text)
    links = len(LINK.findall(text))
    rest = LINK.sub("", text)
    return 23 * links + sum(1 if any(lo <= ord(c) <= hi for lo, hi in LIGHT) else 2 for c in rest)


def problem(status: int, title: str, detail: str, headers: dict[str, str]) -> web.Response:
    """X API v2's error body: RFC 7807 problem+json."""
    body = {"title": title, "detail": detail, "type": "about:blank", "status": status}
    return web.json_response(body, status=status, headers=headers, content_type="application/problem+json")


def invalid(detail: str, headers: dict[str, str]) -> web.Response:
    body = {
        "errors": [{"message": detail}],
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
        "type": "https://api.twitter.com/2/problems/invalid-request",
    }
    return web.json_response(body, status=400, headers=headers)


def _post_problem(body: dict[str, Any]) -> str:
    text, reply = body.get("text"), body.get("reply")
    if not isinstance(text, str) or not text:
        return "text must be a non-empty string"
    if weighted(text) > POST_LIMIT:
        return f"text is {weighted(text)} weighted characters, over {POST_LIMIT}"
    if reply is not None:
        target = reply.get("in_reply_to_tweet_id") if isinstance(reply, dict) else None
        if not isinstance(target, str) or not re.fullmatch(r"\d{1,19}", target):
            return "reply.in_reply_to_tweet_id must be a post id (a string of digits)"
    return ""


def _dm_problem(body: dict[str, Any]) -> str:
    text = body.get("text")
    if not isinstance(text, str) or not text:
        return "text must be a non-empty string"
    if len(text) > DM_LIMIT:
        return f"text is {len(text)} characters, over {DM_LIMIT}"
    return ""


class Call(NamedTuple):
    path: str
    authorization: str
    body: dict[str, Any]


@dataclass
class FakeX(FakePlatform[Call]):
    """POST /2/tweets and POST /2/dm_conversations/with/{participant_id}/messages, with
    `Authorization: Bearer <user token>` and a JSON body.

    A wrong token is a 401, a malformed body (text missing or empty, a post over 280 weighted characters, a DM
    over 10,000, a non-string reply id) a 400. Every answer carries x-rate-limit-limit/-remaining/-reset for its
    endpoint's 15-minute window, and a spent window answers 429. `fail` holds statuses to answer next, one per
    call: 429 as x_rate_limit_429.json shows (code 88, remaining 0), or any other status as problem+json;
    `problem_json` makes the 429 body problem+json as well. `replyable`, when set, acts as a self-serve app:
    a reply to a post not in it is a 403. A success answers 201 and records the call in `calls`.
    """

    token: str
    user_id: str
    fail: list[int] = field(default_factory=list)
    problem_json: bool = False
    replyable: set[str] | None = None
    used: dict[str, int] = field(default_factory=dict)
    reset: int = field(default_factory=lambda: int(time.time()) + WINDOW_S)

    def _rate(self, endpoint: str) -> dict[str, str]:
        remaining = max(0, LIMITS[endpoint] - self.used.get(endpoint, 0))
        return {
            "x-rate-limit-limit": str(LIMITS[endpoint]),
            "x-rate-limit-remaining": str(remaining),
            "x-rate-limit-reset": str(self.reset),
        }

    def _limited(self, headers: dict[str, str]) -> web.Response:
        headers = headers | {"x-rate-limit-remaining": "0"}
        if self.problem_json:
            return problem(429, "Too Many Requests", "Too Many Requests", headers)
        return web.json_response(RATE_LIMITED, status=429, headers=headers)

    async def handle(self, request: web.Request) -> web.Response:
        endpoint = "dm" if "participant_id" in request.match_info else "tweets"
        headers = self._rate(endpoint)
        authorization = request.headers.get("Authorization", "")
        if authorization != f"Bearer {self.token}":
            return problem(401, "Unauthorized", "Unauthorized", headers)
        if request.content_type != "application/json":
            return invalid("the body must be application/json", headers)
        body = await request.json()
        if not isinstance(body, dict):
            return invalid("the body must be a JSON object", headers)
        mistake = _dm_problem(body) if endpoint == "dm" else _post_problem(body)
        participant = request.match_info.get("participant_id", "")
        if endpoint == "dm" and not re.fullmatch(r"\d{1,19}", participant):
            mistake = "participant_id must be a user id"
        if mistake:
            return invalid(mistake, headers)
        if self.fail:
            status = self.fail.pop(0)
            if status == 429:
                return self._limited(headers)
            return problem(status, HTTPStatus(status).phrase, f"{HTTPStatus(status).description}.", headers)
        if self.used.get(endpoint, 0) >= LIMITS[endpoint]:
            return self._limited(headers)
        target = (body.get("reply") or {}).get("in_reply_to_tweet_id")
        if endpoint == "tweets" and self.replyable is not None and target not in self.replyable:
            return problem(403, "Forbidden", NOT_MENTIONED, headers)
        self.used[endpoint] = self.used.get(endpoint, 0) + 1
        headers = self._rate(endpoint)
        await self.record(Call(request.path, authorization, body))
        number = str(1582103724607971332 + len(self.calls))
        if endpoint == "dm":
            conversation = "-".join(sorted((self.user_id, participant), key=int))
            data = {"dm_conversation_id": conversation, "dm_event_id": number}
        else:
            data = {"id": number, "text": body["text"]}
        return web.json_response({"data": data}, status=201, headers=headers)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/2/tweets", self.handle)
        app.router.add_post("/2/dm_conversations/with/{participant_id}/messages", self.handle)
