"""WhatsApp Cloud API: deliveries to POST /webhooks/whatsapp, replies through POST /{phone number id}/messages.

Meta signs deliveries as for Messenger (meta.py). A delivery batches entries, changes and messages; only the
`messages` field carries what customers write, and of its value only `messages[]`: `statuses[]` are receipts
of our own sends (the Cloud API has no echoes) and `errors[]` are logged. A business may have several numbers,
so a conversation is `<phone number id>:<customer>`: send() answers from the number that was written to.

Who the customer is: Meta now adds a business-scoped user id (BSUID, `from_user_id` / `contacts[].user_id`,
e.g. "US.13491208655302741918") to every message, and omits the phone number (`from`, `wa_id`) of users with
a username. The author is keyed on the BSUID when there is one, else the phone number. Replies go to the phone
number when there is one (`to`, as Meta recommends), else to the BSUID (`recipient`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.channels import meta
from bot.channels.base import Answer, epoch, inbound, max_chars, problems, registered
from bot.config import Settings
from bot.errors import BadRequest, ChannelError, ConfigError
from bot.models import Author, InboundMessage, Reply

logger = logging.getLogger(__name__)

OBJECT = "whatsapp_business_account"
ATTACHMENTS = {"image", "audio", "video", "document", "sticker", "location", "contacts"}
# Reactions, system notices (number changed), unsupported and other types hold nothing to answer.


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Text(_Model):
    body: str


class _Media(_Model):
    caption: str | None = None  # image, video and document have one; audio and sticker don't


class _Button(_Model):
    text: str  # the customer tapped a quick-reply button of a template: its label is what they said


class _Message(_Model):
    id: str = Field(min_length=1)  # the wamid
    from_: str | None = Field(None, alias="from")  # the phone number; omitted for some users with a username
    from_user_id: str | None = None  # the BSUID
    timestamp: int  # epoch seconds, sent as a string
    type: str
    group_id: str | None = None
    text: _Text | None = None
    image: _Media | None = None
    video: _Media | None = None
    document: _Media | None = None
    button: _Button | None = None


class _Profile(_Model):
    name: str = ""
    username: str | None = None


class _Contact(_Model):
    wa_id: str | None = None
    user_id: str | None = None
    profile: _Profile = _Profile()


class _Status(_Model):
    id: str
    status: str
    errors: list[dict[str, Any]] = []


class _Metadata(_Model):
    phone_number_id: str = Field(min_length=1)


class _Value(_Model):
    metadata: _Metadata
    contacts: list[_Contact] = []
    messages: list[_Message] = []
    statuses: list[_Status] = []
    errors: list[dict[str, Any]] = []


class _Change(_Model):
    field: str
    value: dict[str, Any]  # its shape depends on `field`: only "messages" is read


class _Entry(_Model):
    changes: list[_Change] = []


class _Delivery(_Model):
    object: str
    entry: list[_Entry]


class _SentMessage(_Model):
    id: str


class _Sent(_Model):
    messages: list[_SentMessage] = Field(min_length=1)


def _sender(contacts: list[_Contact], message: _Message) -> _Contact:
    """The contacts[] entry of a message's author (it carries the name); an empty one if Meta sent none."""
    for contact in contacts:
        if (message.from_ and contact.wa_id == message.from_) or (
            message.from_user_id and contact.user_id == message.from_user_id
        ):
            return contact
    return _Contact()


def _words(message: _Message) -> tuple[str, tuple[str, ...]] | None:
    """A message's text and attachment kinds, or None for a type that holds nothing to answer."""
    if message.type == "text" and message.text is not None:
        return message.text.body, ()
    if message.type == "button" and message.button is not None:
        return message.button.text, ()
    if message.type in ATTACHMENTS:
        media = getattr(message, message.type, None)
        caption = media.caption if isinstance(media, _Media) else None
        return caption or "", (message.type,)
    return None


@registered
class WhatsAppChannel:
    name = "whatsapp"
    surfaces: tuple[str, ...] = ("whatsapp",)
    credentials = "BOT_META_WHATSAPP_TOKEN (with BOT_META_APP_SECRET and BOT_META_VERIFY_TOKEN)"
    resend_safe = False

    def __init__(
        self, token: str, app_secret: str, verify_token: str, graph_url: str, session: aiohttp.ClientSession
    ) -> None:
        """`graph_url` includes the version: https://graph.facebook.com/v23.0."""
        self._token = token
        self._app_secret = app_secret.encode()
        self._verify_token = verify_token.encode()
        self._graph = graph_url.rstrip("/")
        self._session = session

    @classmethod
    def configured(cls, settings: Settings) -> bool:
        return settings.meta_whatsapp_token is not None

    @classmethod
    def from_settings(cls, settings: Settings, session: aiohttp.ClientSession) -> WhatsAppChannel:
        token, secret, verify = settings.meta_whatsapp_token, settings.meta_app_secret, settings.meta_verify_token
        if token is None or secret is None or verify is None:
            raise ConfigError("whatsapp needs BOT_META_WHATSAPP_TOKEN, BOT_META_APP_SECRET and BOT_META_VERIFY_TOKEN")
        return cls(
            token.get_secret_value(),
            secret.get_secret_value(),
            verify.get_secret_value(),
            f"{settings.meta_graph_url.rstrip('/')}/{settings.meta_graph_version}",
            session,
        )

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        meta.verify_signature([self._app_secret], headers, body)

    def handshake(self, query: Mapping[str, str]) -> Answer | None:
        return meta.hub_challenge(self._verify_token, query)

    async def hand_over(self, message: InboundMessage) -> None:
        return None  # the Cloud API has no inbox of its own: people answer from the review desk

    def parse(self, body: bytes, received_at: datetime) -> list[InboundMessage]:
        """Every customer message of every entry and change; receipts, errors and other fields give nothing."""
        try:
            delivery = _Delivery.model_validate_json(body)
        except ValidationError as error:
            raise BadRequest("invalid_delivery", problems(error)) from error
        if delivery.object != OBJECT:
            raise BadRequest("invalid_delivery", f"object: {delivery.object!r} is not {OBJECT!r}")
        found = []
        for e, entry in enumerate(delivery.entry):
            for c, change in enumerate(entry.changes):
                if change.field != "messages":
                    continue
                try:
                    value = _Value.model_validate(change.value)
                except ValidationError as error:
                    raise BadRequest("invalid_delivery", problems(error, f"entry.{e}.changes.{c}.value")) from error
                self._log_failures(value)
                found += [self._message(value, message, received_at) for message in value.messages]
        return [message for message in found if message is not None]

    def _message(self, value: _Value, message: _Message, received_at: datetime) -> InboundMessage | None:
        words = _words(message)
        # A group's message is skipped too: a reply would go to the author's own chat, not to the group.
        if words is None or not any(words) or message.group_id is not None:
            logger.debug("whatsapp message skipped id=%s type=%s", message.id, message.type)
            return None
        text, attachments = words
        contact = _sender(value.contacts, message)
        author = message.from_user_id or contact.user_id or message.from_ or contact.wa_id
        address = message.from_ or contact.wa_id or message.from_user_id or contact.user_id
        if author is None or address is None:
            raise BadRequest("invalid_delivery", f"message {message.id}: neither from nor from_user_id")
        return inbound(
            "invalid_delivery",
            channel=self.name,
            id=message.id,
            conversation_id=f"{value.metadata.phone_number_id}:{address}",
            text=text,
            author=Author(id=author, handle=contact.profile.username or contact.profile.name or author),
            created_at=epoch(message.timestamp, "invalid_delivery", f"message {message.id}: timestamp"),
            public=False,
            received_at=received_at,
            attachments=attachments,
        )

    @staticmethod
    def _log_failures(value: _Value) -> None:
        """Errors Meta reports after the fact: a reply it could not deliver, a problem with the webhook."""
        number = value.metadata.phone_number_id
        failed = [
            (status.id, error) for status in value.statuses if status.status == "failed" for error in status.errors
        ]
        for wamid, error in [("-", error) for error in value.errors] + failed:
            logger.warning(
                "whatsapp error phone_number_id=%s message=%s code=%s title=%s",
                number,
                wamid,
                error.get("code"),
                error.get("title") or error.get("message"),
            )

    async def send(self, reply: Reply) -> str | None:
        """A text quoting the customer's message, from the number they wrote to; the new message's wamid."""
        limit = max_chars("whatsapp")
        if not 1 <= len(reply.text) <= limit:
            raise ChannelError(f"WhatsApp text must be 1 to {limit} characters, not {len(reply.text)}", retryable=False)
        message = reply.message
        opened = meta.window(
            message.created_at, datetime.now(UTC), by_person=reply.origin == "reviewer", human_agent_tag=False
        )
        if opened is meta.Window.CLOSED:
            raise meta.closed_window("WhatsApp")
        number, _, customer = message.conversation_id.partition(":")
        body: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            # a phone number is digits; a BSUID is "<country>.<id>"
            ("recipient" if "." in customer else "to"): customer,
            "type": "text",
            "text": {"preview_url": False, "body": reply.text},
            "context": {"message_id": message.id},
        }
        answer = await meta.graph_post(self._session, "WhatsApp", f"{self._graph}/{number}/messages", self._token, body)
        try:
            return _Sent.model_validate(answer).messages[0].id
        except ValidationError:  # accepted (2xx) but without the documented wamid: nothing to record it by
            return None
