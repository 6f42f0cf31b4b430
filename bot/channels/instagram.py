"""Instagram: a professional account's direct messages and the comments on its media, to
POST /webhooks/instagram; replies through the Graph API (graph.facebook.com with the linked Page's token, or
graph.instagram.com with an Instagram user token), as `Authorization: Bearer`.

Deliveries come as `object: "instagram"`. Direct messages (`entry[].messaging[]`, Messenger's shape) become
"instagram_dm" messages, answered inside Meta's messaging window. Comments (fields "comments" and
"live_comments", in `entry[].changes[]` or flat under the entry: both are published) become public
"instagram_comment" messages, answered with a public reply; Instagram refuses public replies on a live video,
so a live comment gets the documented private reply (a DM about that comment) instead. The account's own
comments and echoes of its own messages give nothing. Mentions ("mentions" field) carry only a media and a
comment id, no text or author: they are logged and skipped rather than fetched, since answering one would also
need another endpoint (POST /{ig-user-id}/mentions), and a review case without its text helps nobody.

Apps that use Business Login for Instagram sign deliveries with the Instagram app secret, others with the Meta
app secret (platforms.md §2.2, §8.5): a signature by either is accepted.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import aiohttp
from pydantic import Field

from bot.channels import meta, meta_messaging
from bot.channels.base import inbound, registered
from bot.channels.meta_messaging import Model
from bot.config import Settings
from bot.errors import ConfigError
from bot.models import Author, InboundMessage, Reply

logger = logging.getLogger(__name__)
PLATFORM = "Instagram"
COMMENT_FIELDS = ("comments", "live_comments")
LIVE = "live:"  # conversation_id prefix of a live video's comments (answered privately)


class _User(Model):
    id: str = Field(min_length=1)
    username: str = ""


class _Media(Model):
    id: str = Field(min_length=1)


class _Comment(Model):
    id: str = Field(min_length=1)
    from_: _User = Field(alias="from")
    text: str = ""
    media: _Media | None = None
    parent_id: str | None = None  # the top-level comment this one answers


class _Mention(Model):
    media_id: str = ""
    comment_id: str = ""


@registered
class InstagramChannel(meta_messaging.MessagingChannel):
    name = "instagram"
    surfaces: tuple[str, ...] = ("instagram_dm", "instagram_comment")
    object_name = "instagram"
    dm_surface = "instagram_dm"
    credentials = "BOT_META_INSTAGRAM_TOKEN (with BOT_META_APP_SECRET and BOT_META_VERIFY_TOKEN)"

    @classmethod
    def configured(cls, settings: Settings) -> bool:
        return settings.meta_instagram_token is not None  # Settings insists on the app secret and verify token

    @classmethod
    def from_settings(cls, settings: Settings, session: aiohttp.ClientSession) -> InstagramChannel:
        token, secret, verify = settings.meta_instagram_token, settings.meta_app_secret, settings.meta_verify_token
        if token is None or secret is None or verify is None:
            raise ConfigError("instagram needs BOT_META_INSTAGRAM_TOKEN, BOT_META_APP_SECRET and BOT_META_VERIFY_TOKEN")
        extra = settings.meta_instagram_app_secret
        return cls(
            app_secrets=[secret.get_secret_value()] + ([extra.get_secret_value()] if extra else []),
            verify_token=verify.get_secret_value(),
            token=token.get_secret_value(),
            graph_url=f"{settings.meta_instagram_graph_url.rstrip('/')}/{settings.meta_graph_version}",
            session=session,
        )

    @staticmethod
    def comment(
        entry: meta_messaging.Entry, change: meta_messaging.Change, where: str, received_at: datetime
    ) -> InboundMessage | None:
        """A comment by someone else than the account, as a public message; mentions and the rest: None."""
        if change.field == "mentions":
            mention = meta_messaging.validated(_Mention, change.value, where)
            logger.info(
                "instagram mention skipped (no text without a Graph fetch) account=%s media=%s comment=%s",
                entry.id,
                mention.media_id,
                mention.comment_id,
            )
            return None
        if change.field not in COMMENT_FIELDS:
            return None
        comment = meta_messaging.validated(_Comment, change.value, where)
        if comment.from_.id == entry.id or not comment.text.strip():
            return None  # the account's own comment (its replies too)
        if change.field == "live_comments":
            conversation = LIVE + (comment.media.id if comment.media else comment.id)  # the broadcast's chat
        else:
            conversation = comment.parent_id or comment.id  # the thread: Instagram nests one level
        return inbound(
            "invalid_delivery",
            channel="instagram_comment",
            id=comment.id,
            conversation_id=conversation,
            text=comment.text,
            author=Author(id=comment.from_.id, handle=comment.from_.username or comment.from_.id),
            created_at=meta_messaging.moment(entry.time, "entry.time") if entry.time else received_at,  # none in value
            public=True,
            received_at=received_at,
        )

    async def send(self, reply: Reply) -> str | None:
        """A public reply under a comment (a private one for a live comment), or a DM to the customer's IGSID;
        the new comment's or message's id."""
        message = reply.message
        if message.channel == "instagram_comment" and not message.conversation_id.startswith(LIVE):
            meta_messaging.refuse_unsendable(PLATFORM, "instagram_comment", reply.text)
            url = f"{self._graph}/{message.id}/replies"
            answer = await meta.graph_post(self._session, PLATFORM, url, self._token, {"message": reply.text})
            return str(answer["id"]) if "id" in answer else None
        meta_messaging.refuse_unsendable(PLATFORM, "instagram_dm", reply.text)  # a private reply is a DM
        body: dict[str, Any]
        if message.channel == "instagram_comment":
            body = {"recipient": {"comment_id": message.id}, "message": {"text": reply.text}}
        else:
            body = meta_messaging.direct_reply(PLATFORM, reply, self._clock(), always_typed=False)
        answer = await meta.graph_post(self._session, PLATFORM, f"{self._graph}/me/messages", self._token, body)
        return str(answer["message_id"]) if "message_id" in answer else None
