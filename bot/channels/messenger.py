"""Messenger: a Facebook Page's direct messages and the comments on its posts, to POST /webhooks/messenger;
replies through the Graph API with the Page access token (as `Authorization: Bearer`, which the Graph API accepts
as it accepts the documented `access_token` parameter, and which keeps the token out of URLs and logs).

Deliveries come as `object: "page"`. Direct messages (`entry[].messaging[]`) become "messenger" messages and
are answered with the Send API inside Meta's messaging window. Comments on the Page's posts (`entry[].changes[]`,
field "feed", item "comment", verb "add") become public "facebook_comment" messages, answered with a public
reply under the comment. The Page's own comments, edits, removals and other feed activity give nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import aiohttp
from pydantic import Field

from bot.channels import meta, meta_messaging
from bot.channels.base import Answer, registered
from bot.channels.meta_messaging import Model
from bot.config import Settings
from bot.errors import ConfigError
from bot.models import Author, InboundMessage, Reply

logger = logging.getLogger(__name__)
PLATFORM = "Messenger"


class _FeedChange(Model):
    item: str = ""
    verb: str = ""


class _From(Model):
    id: str = Field(min_length=1)
    name: str = ""


class _FeedComment(Model):
    comment_id: str = Field(min_length=1)
    post_id: str = Field(min_length=1)
    parent_id: str | None = None  # the post for a top-level comment, else the comment it answers
    from_: _From = Field(alias="from")
    message: str = ""
    created_time: int


def _clock() -> datetime:
    return datetime.now(UTC)


@registered
class MessengerChannel:
    name = "messenger"
    surfaces: tuple[str, ...] = ("messenger", "facebook_comment")
    credentials = "BOT_META_PAGE_TOKEN (with BOT_META_APP_SECRET and BOT_META_VERIFY_TOKEN)"
    resend_safe = False

    def __init__(
        self,
        *,
        app_secret: str,
        verify_token: str,
        page_token: str,
        graph_url: str,
        session: aiohttp.ClientSession,
        clock: Callable[[], datetime] = _clock,
    ) -> None:
        self._secret = app_secret.encode()
        self._verify_token = verify_token.encode()
        self._token = page_token
        self._graph = graph_url.rstrip("/")  # with the version: https://graph.facebook.com/v23.0
        self._session = session
        self._clock = clock

    @classmethod
    def configured(cls, settings: Settings) -> bool:
        return settings.meta_page_token is not None  # Settings insists on the app secret and verify token with it

    @classmethod
    def from_settings(cls, settings: Settings, session: aiohttp.ClientSession) -> MessengerChannel:
        if settings.meta_page_token is None or settings.meta_app_secret is None or settings.meta_verify_token is None:
            raise ConfigError("messenger needs BOT_META_PAGE_TOKEN, BOT_META_APP_SECRET and BOT_META_VERIFY_TOKEN")
        return cls(
            app_secret=settings.meta_app_secret.get_secret_value(),
            verify_token=settings.meta_verify_token.get_secret_value(),
            page_token=settings.meta_page_token.get_secret_value(),
            graph_url=f"{settings.meta_graph_url.rstrip('/')}/{settings.meta_graph_version}",
            session=session,
        )

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        meta.verify_signature([self._secret], headers, body)

    def handshake(self, query: Mapping[str, str]) -> Answer | None:
        return meta.hub_challenge(self._verify_token, query)

    async def hand_over(self, message: InboundMessage) -> None:
        return None  # the Page inbox already shows every thread; nothing to hand

    def parse(self, body: bytes, received_at: datetime) -> list[InboundMessage]:
        """Every customer message and Page comment in the delivery (entries and events may be batched)."""
        delivery = meta_messaging.read(body, "page", self.name)
        messages: list[InboundMessage] = []
        for i, entry in enumerate(delivery.entry):
            messages += meta_messaging.direct_messages(entry, "messenger", received_at)
            for j, change in enumerate(entry.all_changes()):
                comment = self._comment(entry, change, f"entry.{i}.changes.{j}.value", received_at)
                messages += [comment] if comment else []
        return messages

    @staticmethod
    def _comment(
        entry: meta_messaging.Entry, change: meta_messaging.Change, where: str, received_at: datetime
    ) -> InboundMessage | None:
        """A new comment by someone else than the Page, as a public message; anything else in the feed: None."""
        if change.field != "feed":
            return None  # mentions and other Page fields this webhook may be subscribed to
        kind = meta_messaging.validated(_FeedChange, change.value, where)
        if kind.item != "comment" or kind.verb != "add":
            return None  # posts, reactions, edits and removals
        comment = meta_messaging.validated(_FeedComment, change.value, where)
        if comment.from_.id == entry.id or not comment.message.strip():
            return None  # the Page's own comment (its replies too), or a photo or sticker alone
        top_level = comment.parent_id in (None, comment.post_id)
        return InboundMessage(
            channel="facebook_comment",
            id=comment.comment_id,
            conversation_id=comment.comment_id if top_level else str(comment.parent_id),  # the comment thread
            text=comment.message,
            author=Author(id=comment.from_.id, handle=comment.from_.name or comment.from_.id),
            created_at=meta_messaging.moment(comment.created_time),
            public=True,
            received_at=received_at,
        )

    async def send(self, reply: Reply) -> str | None:
        """A public reply under a comment, or a Send API message to the customer's PSID; the new id."""
        meta_messaging.refuse_unsendable(PLATFORM, reply.message.channel, reply.text)
        if reply.message.channel == "facebook_comment":
            url = f"{self._graph}/{reply.message.id}/comments"
            answer = await meta.graph_post(self._session, PLATFORM, url, self._token, {"message": reply.text})
            return str(answer["id"]) if "id" in answer else None
        body = meta_messaging.direct_reply(PLATFORM, reply, self._clock(), always_typed=True)
        answer = await meta.graph_post(self._session, PLATFORM, f"{self._graph}/me/messages", self._token, body)
        return str(answer["message_id"]) if "message_id" in answer else None
