"""The generic JSON channel: any system that can sign a JSON body with HMAC-SHA256 can talk to the bot."""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from datetime import datetime

import aiohttp
import pydantic_core
from pydantic import ValidationError

from bot.channels.base import Answer, problems, registered
from bot.config import Settings
from bot.errors import BadRequest, ChannelError, Unauthentic
from bot.http import retry_after
from bot.models import InboundMessage, Reply

SIGNATURE_HEADER = "X-Bot-Signature"


# What a sender may set; the rest of an InboundMessage is ours (channel, received_at, attachments)
_FIELDS = ("id", "conversation_id", "text", "author", "created_at", "public")


def sign(secret: bytes, body: bytes) -> str:
    """The X-Bot-Signature value of a body."""
    return "sha256=" + hmac.digest(secret, body, "sha256").hex()


@registered
class GenericChannel:
    """Inbound: POST /webhooks/generic, one message object or a list. Outbound: POST to the reply URL."""

    name = "generic"
    surfaces: tuple[str, ...] = ("generic",)
    credentials = "BOT_GENERIC_SECRET"
    resend_safe = True  # the receiver is told to dedup on reply_id

    def __init__(self, secret: bytes, reply_url: str | None, session: aiohttp.ClientSession) -> None:
        self._secret = secret
        self._reply_url = reply_url
        self._session = session

    @classmethod
    def configured(cls, settings: Settings) -> bool:
        return settings.generic_secret is not None

    @classmethod
    def from_settings(cls, settings: Settings, session: aiohttp.ClientSession) -> GenericChannel:
        assert settings.generic_secret is not None
        return cls(settings.generic_secret.get_secret_value().encode(), settings.generic_reply_url, session)

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        given = headers.get(SIGNATURE_HEADER, "")
        if not hmac.compare_digest(given.encode(), sign(self._secret, body).encode()):
            raise Unauthentic("bad_signature", f"missing or wrong {SIGNATURE_HEADER}")

    def handshake(self, query: Mapping[str, str]) -> Answer | None:
        return None

    async def hand_over(self, message: InboundMessage) -> None:
        return None  # the receiving system decides who answers next

    def parse(self, body: bytes, received_at: datetime) -> list[InboundMessage]:
        try:
            data = pydantic_core.from_json(body)  # a quarter of json.loads's time; nesting is bounded
        except ValueError as error:
            raise BadRequest("malformed_json", f"body is not valid JSON: {error}") from error
        items = data if isinstance(data, list) else [data]
        if not items:
            raise BadRequest("empty", "the list of messages is empty")
        messages = []
        for index, item in enumerate(items):
            where = f"message {index}: " if isinstance(data, list) else ""
            if not isinstance(item, dict):
                raise BadRequest("invalid_message", where + "body: expected a JSON object")
            fields = {name: item[name] for name in _FIELDS if name in item}  # unknown fields are ignored
            try:  # validated once, as the message itself (a quarter less CPU than a payload model copied)
                messages.append(
                    InboundMessage.model_validate(fields | {"channel": self.name, "received_at": received_at})
                )
            except ValidationError as error:
                raise BadRequest("invalid_message", where + problems(error)) from error
        return messages

    async def send(self, reply: Reply) -> str | None:
        if self._reply_url is None:
            raise ChannelError("BOT_GENERIC_REPLY_URL is not set: nowhere to deliver", retryable=False)
        body = json.dumps(
            {
                "reply_id": reply.reply_id,
                "in_reply_to": reply.message.id,
                "conversation_id": reply.message.conversation_id,
                "text": reply.text,
            }
        ).encode()
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(self._secret, body)}
        try:
            async with self._session.post(self._reply_url, data=body, headers=headers) as response:
                if response.status < 300:
                    return None
                text = (await response.text())[:200]
                retryable = response.status == 429 or response.status >= 500
                raise ChannelError(
                    f"reply URL answered {response.status}: {text}",
                    retryable=retryable,
                    retry_after=retry_after(response.headers.get("Retry-After")),
                )
        except (aiohttp.ClientError, TimeoutError) as error:
            raise ChannelError(f"reply URL unreachable: {error!r}", retryable=True) from error
