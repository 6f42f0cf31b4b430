"""What Messenger, Instagram and WhatsApp share: Meta's webhook handshake and signature, the Graph API call
with its error codes, and the 24-hour messaging window.

Meta signs every delivery with X-Hub-Signature-256 (hex HMAC-SHA256 of the raw bytes, keyed by the app
secret); the legacy sha1 header is ignored. Graph errors rarely come as 429: throttling is an error code in a
400 body, and how long to wait is only in X-Business-Use-Case-Usage, in minutes.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import aiohttp

from bot.channels.base import Answer
from bot.errors import ChannelError, Unauthentic

SIGNATURE_HEADER = "X-Hub-Signature-256"
USAGE_HEADER = "X-Business-Use-Case-Usage"
# Error codes that mean "too many, wait" (platforms.md §1.4, §3.4): app, user, page, custom, business-use-case
# (80002 is Instagram's) and WhatsApp's throughput, pair-rate and spam limits.
THROTTLED = {4, 17, 32, 613, 80001, 80002, 80006, 80007, 130429, 131056, 131048}
# "Outside the allowed window": Messenger's code 10 / subcode 2018278, Instagram's 2534022, WhatsApp's 131047.
WINDOW_CLOSED = {(10, 2018278), (10, 2534022), (131047, None)}
THROTTLE_WAIT_S = 60.0  # when Meta says "throttled" without saying for how long
WINDOW = timedelta(hours=24)  # free-form replies after the customer's last message
HUMAN_AGENT_WINDOW = timedelta(days=7)  # Messenger and Instagram: a person may answer with the HUMAN_AGENT tag


def signature(secret: bytes, body: bytes) -> str:
    """The X-Hub-Signature-256 value Meta sends with `body`."""
    return "sha256=" + hmac.digest(secret, body, "sha256").hex()


def verify_signature(secrets: Sequence[bytes], headers: Mapping[str, str], body: bytes) -> None:
    """Raise Unauthentic unless X-Hub-Signature-256 matches the raw body under one of `secrets` (Instagram
    apps with Business Login sign with the Instagram app secret, others with the Meta app secret)."""
    given = headers.get(SIGNATURE_HEADER)
    if not given:
        raise Unauthentic("missing_signature", f"no {SIGNATURE_HEADER} header")
    matches = [hmac.compare_digest(given.encode(), signature(secret, body).encode()) for secret in secrets]
    if not any(matches):
        raise Unauthentic("bad_signature", f"{SIGNATURE_HEADER} does not match the body")


def hub_challenge(verify_token: bytes, query: Mapping[str, str]) -> Answer:
    """Meta's subscription check: echo hub.challenge if the verify token is ours, else 403."""
    token = query.get("hub.verify_token", "").encode()
    if query.get("hub.mode") != "subscribe" or not hmac.compare_digest(token, verify_token):
        return Answer(403, "hub.mode must be subscribe and hub.verify_token must match BOT_META_VERIFY_TOKEN")
    challenge = query.get("hub.challenge", "")
    if not challenge:
        return Answer(400, "hub.challenge is missing")
    return Answer(200, challenge)


class Window(StrEnum):
    """Where a reply stands in Meta's messaging window."""

    OPEN = "open"  # within 24 h of the customer's message: a normal reply
    HUMAN_AGENT = "human_agent"  # a person answering within 7 days (Messenger, Instagram): tag HUMAN_AGENT
    CLOSED = "closed"  # too late for free text: a person must decide (a template, another channel)


def window(message_at: datetime, now: datetime, *, by_person: bool, human_agent_tag: bool) -> Window:
    """Whether a free-form reply to a message written at `message_at` may still be sent, and how."""
    age = now - message_at
    if age <= WINDOW:
        return Window.OPEN
    if by_person and human_agent_tag and age <= HUMAN_AGENT_WINDOW:
        return Window.HUMAN_AGENT
    return Window.CLOSED


def closed_window(platform: str) -> ChannelError:
    """The error that sends a reply to a reviewer instead of to Meta, which would refuse it."""
    return ChannelError(
        f"{platform}: the customer's message is older than Meta's messaging window; free text would be refused",
        retryable=False,
        reason="outside_messaging_window",
    )


def _wait_minutes(usage: str | None) -> float | None:
    """The longest estimated_time_to_regain_access (minutes) in X-Business-Use-Case-Usage, as seconds."""
    try:
        objects = json.loads(usage or "")
        waits = [
            float(item.get("estimated_time_to_regain_access", 0))
            for entries in objects.values()
            for item in entries
            if isinstance(item, dict)
        ]
    except (ValueError, AttributeError, TypeError):  # absent or not the documented shape: no hint
        return None
    return max(waits) * 60 if waits and max(waits) > 0 else None


def graph_error(platform: str, status: int, headers: Mapping[str, str], answer: Any) -> ChannelError:
    """A failed Graph call as a ChannelError: throttling and 5xx are retried (after Meta's estimate), a
    closed messaging window goes to review, anything else (bad token, blocked user) is permanent."""
    error = answer.get("error") if isinstance(answer, dict) else None
    error = error if isinstance(error, dict) else {}
    code, subcode = error.get("code"), error.get("error_subcode")
    text = f"{platform} answered {status}: code {code}: {str(error.get('message', ''))[:200]}"
    if (code, subcode) in WINDOW_CLOSED or (code, None) in WINDOW_CLOSED:
        return ChannelError(text, retryable=False, reason="outside_messaging_window")
    if code in THROTTLED or status == 429:
        wait = _wait_minutes(headers.get(USAGE_HEADER)) or THROTTLE_WAIT_S
        return ChannelError(text, retryable=True, retry_after=wait)
    return ChannelError(text, retryable=status >= 500 or error.get("is_transient") is True)


async def graph_post(
    session: aiohttp.ClientSession, platform: str, url: str, token: str, body: dict[str, Any]
) -> dict[str, Any]:
    """POST a JSON body to the Graph API with a bearer token; the answer, or ChannelError."""
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with session.post(url, json=body, headers=headers) as response:
            try:
                answer = json.loads(await response.read())
            except (UnicodeDecodeError, json.JSONDecodeError):
                answer = None
            if response.status < 300 and isinstance(answer, dict):
                return answer
            raise graph_error(platform, response.status, response.headers, answer)
    except (aiohttp.ClientError, TimeoutError) as error:
        raise ChannelError(f"{platform} unreachable: {type(error).__name__}", retryable=True) from error
