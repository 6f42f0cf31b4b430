"""The interface every platform adapter implements."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import aiohttp
from pydantic import ValidationError

from bot.config import Settings
from bot.errors import BadRequest
from bot.models import InboundMessage, Reply

# The longest reply each platform accepts, as reply_length() measures it (platform facts, not brand choices;
# persona.yaml may ask for shorter): the platforms' API references for posts, send-message and comment text.
MAX_CHARS = {
    "x_mention": 280,  # weighted: see reply_length()
    "x_reply": 280,
    "x_dm": 10_000,
    "messenger": 2_000,
    "facebook_comment": 8_000,  # a Page comment reply
    "instagram_comment": 2_200,
    "instagram_dm": 1_000,  # bytes of UTF-8
    "whatsapp": 4_096,
    "telegram": 4_096,
    "chatwoot": 150_000,
    "generic": 4_096,
}
MAX_PROBLEMS = 10  # fields a 400 lists: a list of a thousand bad items needs no thousand-line answer
_URL = re.compile(r"https?://\S+")  # bare domains are counted as text: longer or equal, never less
_X_LIGHT = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))  # code points X counts once; others twice


def max_chars(channel: str) -> int:
    """The platform's limit; an unknown channel gets the strictest one."""
    return MAX_CHARS.get(channel, min(MAX_CHARS.values()))


def reply_length(channel: str, text: str) -> int:
    """A reply's length as its platform counts it: X weighs posts (a link is 23, CJK and emoji count 2), an
    Instagram DM is limited in bytes, everything else in characters."""
    if channel in ("x_mention", "x_reply"):
        text = unicodedata.normalize("NFC", text)
        links = _URL.findall(text)
        text = _URL.sub("", text)
        weight = sum(1 if any(lo <= ord(c) <= hi for lo, hi in _X_LIGHT) else 2 for c in text)
        return weight + 23 * len(links)
    if channel == "instagram_dm":
        return len(text.encode())
    return len(text)


def epoch(seconds: float, reason: str, where: str) -> datetime:
    """An epoch time from a delivery, or BadRequest(reason) naming the field when it is no date a datetime
    holds (a year past 9999, or too large for the platform's time_t)."""
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (ValueError, OverflowError, OSError) as error:
        raise BadRequest(reason, f"{where}: {seconds!r} is not a time") from error


def problems(error: ValidationError, where: str = "") -> str:
    """Every field a validation refused, and why, each path under `where` (the part of the delivery that was
    validated): `author.handle: Field required; created_at: ...`; past MAX_PROBLEMS, how many more."""
    found = error.errors()
    listed = [
        f"{'.'.join([where, *(str(part) for part in e['loc'])]).strip('.') or 'body'}: {e['msg']}"
        for e in found[:MAX_PROBLEMS]
    ]
    if len(found) > MAX_PROBLEMS:
        listed.append(f"and {len(found) - MAX_PROBLEMS} more")
    return "; ".join(listed)


def inbound(reason: str, **fields: Any) -> InboundMessage:
    """The message a delivery holds, or BadRequest(reason) naming each field past what the bot keeps: a
    platform's types admit an id of any length (a JSON number has no bound), InboundMessage does not."""
    try:
        return InboundMessage(**fields)
    except ValidationError as error:
        raise BadRequest(reason, problems(error)) from error


@dataclass(frozen=True)
class Answer:
    """What a handshake answers (a platform's GET to the webhook: Meta's hub.challenge, X's CRC)."""

    status: int
    body: str
    content_type: str = "text/plain"


class Channel(Protocol):
    """One platform's adapter. The webhook POST /webhooks/{name} runs verify() on the raw bytes, then parse();
    GET /webhooks/{name} runs handshake(). The sender calls send() for a reply to any of `surfaces` (the
    `InboundMessage.channel` values parse() produces: X has x_mention and x_dm on one webhook) and
    hand_over() when a reviewer hands a conversation to people."""

    name: str
    surfaces: tuple[str, ...]
    # Whether the platform recognises a resent reply (the generic receiver dedups on reply_id): after a crash
    # mid-send, such a reply is resent; any other goes to a reviewer, who checks before sending it again.
    resend_safe: bool

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """Raise Unauthentic unless the body was signed by the platform (compared in constant time)."""
        ...

    def handshake(self, query: Mapping[str, str]) -> Answer | None:
        """The answer to the platform's subscription check, or None if it has none (the GET is then a 405)."""
        ...

    def parse(self, body: bytes, received_at: datetime) -> list[InboundMessage]:
        """The messages in a verified body that a customer wrote; raises BadRequest naming what is wrong."""
        ...

    async def send(self, reply: Reply) -> str | None:
        """Deliver a reply; the platform's id for it (if it gives one), or ChannelError(retryable=...)."""
        ...

    async def hand_over(self, message: InboundMessage) -> None:
        """Give the conversation to the platform's own human inbox, where it has one (Chatwoot)."""
        ...


class ChannelType(Protocol):
    """What the registry needs of a channel class: whether it is configured, and how to build it."""

    name: str
    credentials: str  # the settings that turn it on, as a user sets them (logged when it is off)

    @classmethod
    def configured(cls, settings: Settings) -> bool: ...

    @classmethod
    def from_settings(cls, settings: Settings, session: aiohttp.ClientSession) -> Channel: ...


REGISTRY: dict[str, ChannelType] = {}
T = TypeVar("T", bound=ChannelType)


def registered(cls: T) -> T:
    """Class decorator: make a channel known to build_channels (its module is imported by the package)."""
    REGISTRY[cls.name] = cls
    return cls
