"""Telegram: updates pushed to POST /webhooks/telegram, replies through the Bot API's sendMessage.

Telegram does not sign deliveries: `setWebhook` is given a secret token, and every delivery carries it back
in X-Telegram-Bot-Api-Secret-Token, compared here in constant time. The channel is on only when both the
bot token and that secret are set, so no delivery is ever taken on trust. A message id is unique only within
its chat, so a message is keyed `<chat id>:<message id>` and its conversation is the chat (plus the forum
topic, when there is one).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.channels.base import Answer, epoch, inbound, problems, registered
from bot.config import Settings
from bot.errors import BadRequest, ChannelError, ConfigError, Unauthentic
from bot.http import retry_after
from bot.models import Author, InboundMessage, Reply

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ["message", "business_message"]  # edits and channel posts are not questions to answer


class _User(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: int
    is_bot: bool = False
    first_name: str = ""
    username: str | None = None


class _Chat(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: int
    type: str


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    message_id: int
    date: int
    chat: _Chat
    from_: _User | None = Field(None, alias="from")
    text: str | None = None
    caption: str | None = None  # the text of a photo, video or document
    message_thread_id: int | None = None
    is_topic_message: bool = False


class _Update(BaseModel):
    model_config = ConfigDict(extra="ignore")

    update_id: int
    message: _Message | None = None
    business_message: _Message | None = None


@registered
class TelegramChannel:
    name = "telegram"
    surfaces: tuple[str, ...] = ("telegram",)
    credentials = "BOT_TELEGRAM_BOT_TOKEN and BOT_TELEGRAM_SECRET_TOKEN"
    resend_safe = False

    def __init__(self, token: str, secret: str, api_url: str, session: aiohttp.ClientSession) -> None:
        self._token = token
        self._secret = secret.encode()
        self._api = api_url.rstrip("/")
        self._session = session

    @classmethod
    def configured(cls, settings: Settings) -> bool:
        return settings.telegram_bot_token is not None  # Settings holds its secret token too

    @classmethod
    def from_settings(cls, settings: Settings, session: aiohttp.ClientSession) -> TelegramChannel:
        if settings.telegram_bot_token is None or settings.telegram_secret_token is None:
            raise ConfigError("telegram needs BOT_TELEGRAM_BOT_TOKEN and BOT_TELEGRAM_SECRET_TOKEN")
        return cls(
            settings.telegram_bot_token.get_secret_value(),
            settings.telegram_secret_token.get_secret_value(),
            settings.telegram_api_url,
            session,
        )

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        if not hmac.compare_digest(headers.get(SECRET_HEADER, "").encode(), self._secret):
            raise Unauthentic("bad_secret", f"missing or wrong {SECRET_HEADER}")

    def handshake(self, query: Mapping[str, str]) -> Answer | None:
        return None  # setWebhook registers (`python -m bot channels register telegram`)

    async def hand_over(self, message: InboundMessage) -> None:
        return None  # Telegram has no inbox of its own to hand to

    def parse(self, body: bytes, received_at: datetime) -> list[InboundMessage]:
        """The update's message, if it is one a customer wrote; other updates (and bots) give nothing."""
        try:
            update = _Update.model_validate_json(body)
        except ValidationError as error:
            raise BadRequest("invalid_update", problems(error)) from error
        message = update.message or update.business_message
        if message is None or message.from_ is None or message.from_.is_bot:
            return []
        author = message.from_
        conversation = str(message.chat.id)
        if message.is_topic_message and message.message_thread_id is not None:
            conversation += f":{message.message_thread_id}"
        return [
            inbound(
                "invalid_update",
                channel=self.name,
                id=f"{message.chat.id}:{message.message_id}",
                conversation_id=conversation,
                text=message.text or message.caption or "",
                author=Author(id=str(author.id), handle=author.username or author.first_name or str(author.id)),
                created_at=epoch(message.date, "invalid_update", "message.date"),
                public=message.chat.type != "private",
                received_at=received_at,
            )
        ]

    async def send(self, reply: Reply) -> str | None:
        chat, _, message_id = reply.message.id.rpartition(":")
        _, _, topic = reply.message.conversation_id.partition(":")
        body: dict[str, Any] = {
            "chat_id": int(chat),
            "text": reply.text,
            "reply_parameters": {"message_id": int(message_id), "allow_sending_without_reply": True},
        }
        if topic:
            body["message_thread_id"] = int(topic)
        sent = await self.call("sendMessage", body)
        return f"{chat}:{sent['message_id']}" if isinstance(sent, dict) and "message_id" in sent else None

    async def call(self, method: str, body: dict[str, Any]) -> Any:
        """One Bot API call; its `result`, or ChannelError (retryable on 429, 5xx and lost connections)."""
        url = f"{self._api}/bot{self._token}/{method}"
        try:
            async with self._session.post(url, json=body) as response:
                try:
                    answer = json.loads(await response.read())
                except (UnicodeDecodeError, json.JSONDecodeError):
                    answer = {}
                if response.status < 300 and answer.get("ok"):
                    return answer.get("result")
        except (aiohttp.ClientError, TimeoutError) as error:
            raise ChannelError(f"Telegram unreachable: {type(error).__name__}", retryable=True) from error
        parameters = answer.get("parameters") or {}
        wait = parameters.get("retry_after")
        raise ChannelError(
            f"Telegram {method} answered {response.status}: {str(answer.get('description', ''))[:200]}",
            retryable=response.status == 429 or response.status >= 500,
            retry_after=float(wait)
            if isinstance(wait, int | float)
            else retry_after(response.headers.get("Retry-After")),
        )

    async def register(self, url: str) -> str:
        """setWebhook: deliveries to `url`, carrying the secret; Telegram's description of the result."""
        body = {"url": url, "secret_token": self._secret.decode(), "allowed_updates": ALLOWED_UPDATES}
        await self.call("setWebhook", body)
        return f"Telegram will deliver to {url}"
