"""Chatwoot: an Agent Bot's `outgoing_url` is POST /webhooks/chatwoot; replies go through the Application API.

Chatwoot sends the bot every message of the inboxes it is connected to, its own replies, agents' replies and
private notes included, so only an incoming, public message in a `pending` conversation (the bot's queue) is a
question for the bot; once people own the conversation (`open`), the bot stays silent. Recent Chatwoot signs
deliveries when the bot has a secret: X-Chatwoot-Signature is `sha256=` + hex HMAC-SHA256 of
`<X-Chatwoot-Timestamp>.<raw body>`, and the timestamp bounds replays. Older Chatwoot signs nothing, which
BOT_CHATWOOT_ALLOW_UNSIGNED accepts, and only while no secret is set. A conversation is addressed in API paths
by its account and its per-account display id, so it is keyed `<account id>:<conversation id>`.
"""

from __future__ import annotations

import hmac
import json
import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import aiohttp
from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from bot.channels.base import MAX_CHARS, Answer, inbound, problems, registered
from bot.config import Settings
from bot.errors import BadRequest, ChannelError, ConfigError, Unauthentic
from bot.http import retry_after
from bot.models import Author, InboundMessage, Reply

SIGNATURE_HEADER = "X-Chatwoot-Signature"
TIMESTAMP_HEADER = "X-Chatwoot-Timestamp"
THROTTLE_WAIT_S = 60.0  # rack-attack counts requests per minute and, by default, sends no Retry-After
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore")

    event: str


class _Sender(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: int
    name: str | None = None


class _Contact(BaseModel):
    model_config = ConfigDict(extra="ignore")

    additional_attributes: dict[str, Any] | None = None  # a username here where the inbox's platform has one


class _Meta(BaseModel):
    model_config = ConfigDict(extra="ignore")

    sender: _Contact | None = None


class _Conversation(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: int  # the display id, as API paths want it
    status: str
    meta: _Meta | None = None


class _Account(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: int


class _Attachment(BaseModel):
    model_config = ConfigDict(extra="ignore")

    file_type: str  # image, audio, video, file, location, contact, …


class _Message(BaseModel):
    """A message_created body (Message#webhook_data): its message_type is the enum's name, not its number."""

    model_config = ConfigDict(extra="ignore")

    id: int
    content: str | None = None
    created_at: AwareDatetime
    message_type: str
    private: bool = False
    sender: _Sender | None = None  # activity messages have none
    conversation: _Conversation
    account: _Account
    attachments: list[_Attachment] = []


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """The X-Chatwoot-Signature value Chatwoot sends with `body` at `timestamp`."""
    return "sha256=" + hmac.digest(secret, timestamp.encode() + b"." + body, "sha256").hex()


@registered
class ChatwootChannel:
    name = "chatwoot"
    surfaces: tuple[str, ...] = ("chatwoot",)
    credentials = "BOT_CHATWOOT_BOT_TOKEN, BOT_CHATWOOT_URL and BOT_CHATWOOT_SECRET"
    resend_safe = False  # Chatwoot takes the same content twice as two messages

    def __init__(
        self,
        url: str,
        token: str,
        secret: bytes | None,
        session: aiohttp.ClientSession,
        *,
        max_skew_s: float = 300,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._api = url.rstrip("/") + "/api/v1/accounts"
        self._token = token
        self._secret = secret  # None: unsigned deliveries are accepted (BOT_CHATWOOT_ALLOW_UNSIGNED)
        self._session = session
        self._max_skew_s = max_skew_s
        self._clock = clock

    @classmethod
    def configured(cls, settings: Settings) -> bool:
        return settings.chatwoot_bot_token is not None  # Settings insists on the rest

    @classmethod
    def from_settings(cls, settings: Settings, session: aiohttp.ClientSession) -> ChatwootChannel:
        if settings.chatwoot_bot_token is None or settings.chatwoot_url is None:
            raise ConfigError("chatwoot needs BOT_CHATWOOT_BOT_TOKEN and BOT_CHATWOOT_URL")
        secret = settings.chatwoot_secret
        return cls(
            settings.chatwoot_url,
            settings.chatwoot_bot_token.get_secret_value(),
            None if secret is None else secret.get_secret_value().encode(),
            session,
            max_skew_s=settings.chatwoot_max_skew_s,
        )

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        if self._secret is None:
            return  # Settings allows no secret only with BOT_CHATWOOT_ALLOW_UNSIGNED
        given = headers.get(SIGNATURE_HEADER)
        if not given:
            raise Unauthentic("missing_signature", f"no {SIGNATURE_HEADER} header")
        stamp = headers.get(TIMESTAMP_HEADER, "")
        if not _TIMESTAMP.fullmatch(stamp):
            raise Unauthentic("missing_timestamp", f"{TIMESTAMP_HEADER} is missing or not unix seconds")
        if not hmac.compare_digest(given.encode(), signature(self._secret, stamp, body).encode()):
            raise Unauthentic("bad_signature", f"{SIGNATURE_HEADER} does not match the timestamp and body")
        if abs(self._clock() - int(stamp)) > self._max_skew_s:
            raise Unauthentic("stale_timestamp", f"{TIMESTAMP_HEADER} is over {self._max_skew_s:g} s from now")

    def handshake(self, query: Mapping[str, str]) -> Answer | None:
        return None  # the agent bot's outgoing_url is typed into Chatwoot; nothing checks it

    def parse(self, body: bytes, received_at: datetime) -> list[InboundMessage]:
        """The customer's message, if the delivery is one the bot should answer; every other event, the bot's
        own and agents' messages, notes, and conversations people own give nothing."""
        try:
            if _Event.model_validate_json(body).event != "message_created":
                return []  # message_updated, conversation_opened/resolved, webwidget_triggered
            message = _Message.model_validate_json(body)
        except ValidationError as error:
            raise BadRequest("invalid_event", problems(error)) from error
        conversation = message.conversation
        if message.message_type != "incoming" or message.private or conversation.status != "pending":
            return []
        if message.sender is None:
            raise BadRequest("invalid_event", "sender: an incoming message without its contact")
        text = message.content or ""
        kinds = () if text.strip() else tuple(dict.fromkeys(item.file_type for item in message.attachments))
        if not text.strip() and not kinds:
            return []
        contact = conversation.meta.sender if conversation.meta else None
        username = (contact.additional_attributes or {}).get("username") if contact else None
        sender = message.sender
        handle = username if isinstance(username, str) and username else sender.name or str(sender.id)
        # a long email can exceed what the bot reads: refused, and Chatwoot gives it to its agents
        return [
            inbound(
                "invalid_event",
                channel=self.name,
                id=str(message.id),
                conversation_id=f"{message.account.id}:{conversation.id}",
                text=text,
                author=Author(id=str(sender.id), handle=handle),
                created_at=message.created_at,
                public=False,
                received_at=received_at,
                attachments=kinds,
            )
        ]

    async def send(self, reply: Reply) -> str | None:
        if len(reply.text) > MAX_CHARS["chatwoot"]:
            raise ChannelError(f"Chatwoot refuses content over {MAX_CHARS['chatwoot']} characters", retryable=False)
        body = {"content": reply.text, "message_type": "outgoing", "private": False}
        sent = await self.call(reply.message.conversation_id, "messages", body)
        return str(sent["id"]) if isinstance(sent.get("id"), int) else None

    async def hand_over(self, message: InboundMessage) -> None:
        """Open the conversation: it leaves the bot's `pending` queue for Chatwoot's human agents."""
        await self.call(message.conversation_id, "toggle_status", {"status": "open"})

    async def call(self, conversation_id: str, action: str, body: dict[str, Any]) -> dict[str, Any]:
        """One Application API call on a conversation; its JSON, or ChannelError (retryable on 429, 5xx and
        lost connections)."""
        account, _, conversation = conversation_id.partition(":")
        url = f"{self._api}/{account}/conversations/{conversation}/{action}"
        try:
            async with self._session.post(url, json=body, headers={"api_access_token": self._token}) as response:
                raw = await response.read()
                if response.status < 300:
                    try:
                        answer = json.loads(raw)
                    except (UnicodeDecodeError, json.JSONDecodeError):  # delivered; only its id is unknown
                        answer = {}
                    return answer if isinstance(answer, dict) else {}
        except (aiohttp.ClientError, TimeoutError) as error:
            raise ChannelError(f"Chatwoot unreachable: {type(error).__name__}", retryable=True) from error
        wait = retry_after(response.headers.get("Retry-After"))
        raise ChannelError(
            f"Chatwoot {action} answered {response.status}: {raw[:200].decode(errors='replace')}",
            retryable=response.status == 429 or response.status >= 500,
            retry_after=THROTTLE_WAIT_S if response.status == 429 and wait is None else wait,
        )
