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
from datetime import datetime

import aiohttp
from pydantic import Field

from bot.channels import meta, meta_messaging
from bot.channels.base import inbound, registered
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


@registered
class MessengerChannel(meta_messaging.MessagingChannel):
    name = "messenger"
    surfaces: tuple[str, ...] = ("messenger", "facebook_comment")
    object_name = "page"
    dm_surface = "messenger"
    credentials = "BOT_META_PAGE_TOKEN (with BOT_META_APP_SECRET and BOT_META_VERIFY_TOKEN)"

    @classmethod
    def configured(cls, settings: Settings) -> bool:
        return settings.meta_page_token is not None  # Settings insists on the app secret and verify token with it

    @classmethod
    def from_settings(cls, settings: Settings, session: aiohttp.ClientSession) -> MessengerChannel:
        if settings.meta_page_token is None or settings.meta_app_secret is None or settings.meta_verify_token is None:
            raise ConfigError("messenger needs BOT_META_PAGE_TOKEN, BOT_META_APP_SECRET and BOT_META_VERIFY_TOKEN")
        return cls(
            app_secrets=[settings.meta_app_secret.get_secret_value()],
            verify_token=settings.meta_verify_token.get_secret_value(),
            token=settings.meta_page_token.get_secret_value(),
            graph_url=f"{settings.meta_graph_url.rstrip('/')}/{settings.meta_graph_version}",
            session=session,
        )

    @staticmethod
    def comment(
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
        return inbound(
            "invalid_delivery",
            channel="facebook_comment",
            id=comment.comment_id,
            conversation_id=comment.comment_id if top_level else str(comment.parent_id),  # the comment thread
            text=comment.message,
            author=Author(id=comment.from_.id, handle=comment.from_.name or comment.from_.id),
            created_at=meta_messaging.moment(comment.created_time, f"{where}.created_time"),
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
