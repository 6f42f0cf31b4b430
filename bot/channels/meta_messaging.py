"""What Messenger and Instagram share beyond meta.py: the webhook envelope (`object`, `entry[]` with its
`messaging[]` events and `changes[]`), the direct messages in it, and the body of a direct reply.

Both platforms deliver DMs as the same `entry[].messaging[]` events (platforms.md §1.3, §2.3): the message id is
`message.mid`, the customer is `sender.id` (a page- or Instagram-scoped id; no name comes with it), and there is
no thread id, so a conversation is `<entry id>:<customer id>`, which is also what a reply needs. Meta sends ids
as numbers or strings, and `time` in seconds or milliseconds, depending on the field: both are accepted.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.channels import meta
from bot.channels.base import Answer, epoch, inbound, max_chars, problems, reply_length
from bot.errors import BadRequest, ChannelError
from bot.models import Author, InboundMessage, Reply

logger = logging.getLogger(__name__)


class Model(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)  # ids come as numbers or strings


class _Party(Model):
    id: str = Field(min_length=1)


class _Attachment(Model):
    type: str = Field(min_length=1)


class _Message(Model):
    mid: str = Field(min_length=1)
    text: str | None = None  # a quick reply's text is its button title; its payload is ours, not the customer's
    attachments: list[_Attachment] = []
    sticker_id: str | None = None  # Messenger: the attachment is an image, but it is a sticker
    is_echo: bool = False
    is_deleted: bool = False  # Instagram: the customer unsent it


class _Event(Model):
    sender: _Party
    recipient: _Party
    timestamp: int
    message: _Message | None = None  # absent from receipts, reads, postbacks, reactions and referrals


class Change(Model):
    field: str
    value: dict[str, Any]


class Entry(Model):
    id: str = Field(min_length=1)
    time: int = 0
    messaging: list[_Event] = []
    standby: list[dict[str, Any]] = []  # events of threads another app owns (handover protocol)
    changes: list[Change] = []
    field: str | None = None  # Instagram's examples page puts one change directly under the entry
    value: dict[str, Any] | None = None

    def all_changes(self) -> list[Change]:
        """`changes[]`, plus the flat field/value (platforms.md §8.4: both shapes are published)."""
        flat = [Change(field=self.field, value=self.value)] if self.field and self.value is not None else []
        return self.changes + flat


class Delivery(Model):
    object: str
    entry: list[Entry]


M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], data: Any, where: str) -> M:
    """`data` as `model`, or BadRequest naming the bad fields (under `where`)."""
    try:
        return model.model_validate_json(data) if isinstance(data, bytes) else model.model_validate(data)
    except ValidationError as error:
        raise BadRequest("invalid_delivery", problems(error, where)) from error


def read(body: bytes, expected: str, webhook: str) -> Delivery:
    """The delivery, if it is of the `object` this webhook subscribes to; a misrouted one is a setup mistake."""
    delivery = validated(Delivery, body, "")
    if delivery.object != expected:
        raise BadRequest(
            "wrong_object", f"object is {delivery.object!r}: /webhooks/{webhook} takes {expected!r} deliveries"
        )
    return delivery


def moment(time: int, where: str = "time") -> datetime:
    """An epoch time as Meta sends it: milliseconds in messaging events, seconds in most changes; BadRequest
    naming `where` if it is out of range."""
    return epoch(time / 1000 if time > 10**11 else time, "invalid_delivery", where)


def direct_messages(entry: Entry, surface: str, received_at: datetime) -> list[InboundMessage]:
    """The customers' messages among an entry's messaging events; echoes of the brand's own (`is_echo`, or
    sent by the entry's own account), receipts, reads and unsent messages give nothing."""
    if entry.standby:
        logger.info(
            "standby events ignored (another app owns the thread) entry=%s count=%d", entry.id, len(entry.standby)
        )
    messages = []
    for event in entry.messaging:
        message = event.message
        if message is None or message.is_echo or message.is_deleted or event.sender.id == entry.id:
            continue
        kinds = ("sticker",) if message.sticker_id else tuple(attachment.type for attachment in message.attachments)
        if not message.text and not kinds:
            continue
        messages.append(
            inbound(
                "invalid_delivery",
                channel=surface,
                id=message.mid,
                conversation_id=f"{entry.id}:{event.sender.id}",
                text=message.text or "",
                author=Author(id=event.sender.id, handle=event.sender.id),
                created_at=moment(event.timestamp, f"message {message.mid}: timestamp"),
                public=False,
                received_at=received_at,
                attachments=kinds,
            )
        )
    return messages


def refuse_unsendable(platform: str, surface: str, text: str) -> None:
    """ChannelError (permanent) for a text Meta would refuse: empty, or over the surface's limit."""
    length, limit = reply_length(surface, text), max_chars(surface)
    if not text.strip() or length > limit:
        raise ChannelError(f"{platform}: a {surface} reply must be 1 to {limit} long, not {length}", retryable=False)


def direct_reply(platform: str, reply: Reply, now: datetime, *, always_typed: bool) -> dict[str, Any]:
    """The Send API body of a reply to a direct message. Within 24 hours it is a plain response; a reviewer's
    reply within 7 days carries the HUMAN_AGENT tag; later, meta.closed_window() sends it to review.
    `always_typed`: Messenger wants messaging_type on every send, Instagram only with a tag."""
    customer = reply.message.conversation_id.rpartition(":")[2]
    body: dict[str, Any] = {"recipient": {"id": customer}, "message": {"text": reply.text}}
    state = meta.window(reply.message.created_at, now, by_person=reply.origin == "reviewer", human_agent_tag=True)
    if state is meta.Window.CLOSED:
        raise meta.closed_window(platform)
    if state is meta.Window.HUMAN_AGENT:
        body |= {"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}
    elif always_typed:
        body["messaging_type"] = "RESPONSE"
    return body


def _now() -> datetime:
    return datetime.now(UTC)


class MessagingChannel(ABC):
    """A Meta channel of DMs and comments: Meta's signature and handshake, and a delivery read entry by entry;
    each platform says how a comment looks (`comment`) and how a reply goes out (`send`)."""

    name: str
    surfaces: tuple[str, ...]
    object_name: ClassVar[str]  # the delivery's `object`: "page" or "instagram"
    dm_surface: ClassVar[str]
    resend_safe = False

    def __init__(
        self,
        *,
        app_secrets: list[str],
        verify_token: str,
        token: str,
        graph_url: str,
        session: aiohttp.ClientSession,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._secrets = [secret.encode() for secret in app_secrets]
        self._verify_token = verify_token.encode()
        self._token = token
        self._graph = graph_url.rstrip("/")  # with the version: https://graph.facebook.com/v23.0
        self._session = session
        self._clock = clock

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        meta.verify_signature(self._secrets, headers, body)

    def handshake(self, query: Mapping[str, str]) -> Answer | None:
        return meta.hub_challenge(self._verify_token, query)

    async def hand_over(self, message: InboundMessage) -> None:
        return None  # the Page's or account's inbox already shows every thread; nothing to hand

    def parse(self, body: bytes, received_at: datetime) -> list[InboundMessage]:
        """Every customer DM and comment in the delivery (entries and events may be batched)."""
        delivery = read(body, self.object_name, self.name)
        messages: list[InboundMessage] = []
        for i, entry in enumerate(delivery.entry):
            messages += direct_messages(entry, self.dm_surface, received_at)
            for j, change in enumerate(entry.all_changes()):
                comment = self.comment(entry, change, f"entry.{i}.changes.{j}.value", received_at)
                messages += [comment] if comment else []
        return messages

    @staticmethod
    @abstractmethod
    def comment(entry: Entry, change: Change, where: str, received_at: datetime) -> InboundMessage | None:
        """A customer's comment in a change, as a public message; None for anything else."""
