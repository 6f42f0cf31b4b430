"""X (Twitter): mentions and DMs pushed to POST /webhooks/x by V2 webhooks, replies through X API v2.

One webhook carries both of X's delivery families, told apart by shape: the Account Activity API (AAA,
deprecated; v1.1 objects under a top-level `for_user_id`) and its successor the X Activity API (XAA; an
envelope `{"data": {event_uuid, filter, event_type, payload, includes}}` with v2 objects). Both are signed
the same way (x-twitter-webhooks-signature: base64 HMAC-SHA256 of the raw body under the consumer secret)
and both answer the same CRC GET. A post is keyed by its id and a DM by its event id (both global, and the
same post arriving through AAA and XAA is one message); a DM's conversation is the other participant, whom
the DM send addresses.
"""

from __future__ import annotations

import base64
import hmac
import json
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import aiohttp
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from bot.channels.base import Answer, inbound, max_chars, problems, registered, reply_length
from bot.config import Settings
from bot.errors import BadRequest, ChannelError, ConfigError, Unauthentic
from bot.http import retry_after
from bot.models import Author, InboundMessage, Reply

SIGNATURE_HEADER = "x-twitter-webhooks-signature"
RATE_LIMIT_WAIT_S = 60.0  # a 429 that says neither x-rate-limit-reset nor Retry-After
MEDIA_KINDS = {"photo": "image", "video": "video", "animated_gif": "video"}  # X sends a GIF as an MP4 video
M = TypeVar("M", bound=BaseModel)


def sign(secret: bytes, data: bytes) -> str:
    """The "sha256=" + base64 HMAC-SHA256 value: the signature header of a delivery, and the CRC's response_token."""
    return "sha256=" + base64.b64encode(hmac.digest(secret, data, "sha256")).decode()


def _x_time(value: object) -> object:
    """v1.1's "Fri Aug 21 19:10:05 +0000 2020" (English names: Python leaves LC_TIME at "C")."""
    return datetime.strptime(value, "%a %b %d %H:%M:%S %z %Y") if isinstance(value, str) else value


def _epoch_ms(value: object) -> object:
    """created_timestamp: epoch milliseconds, as a string."""
    if isinstance(value, str) and value.isdigit():
        try:
            return datetime.fromtimestamp(int(value) / 1000, UTC)
        except (OverflowError, OSError) as error:  # pydantic reports a ValueError (a year past 9999) itself
            raise ValueError(f"{value} is not a time") from error
    return value


Id = Annotated[str, Field(pattern=r"^\d{1,19}$")]  # X ids are decimal strings; a DM send puts one in a path
XTime = Annotated[AwareDatetime, BeforeValidator(_x_time)]
EpochMs = Annotated[AwareDatetime, BeforeValidator(_epoch_ms)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


# Account Activity API: v1.1 objects.
class _Media(_Model):
    type: str  # photo, video, animated_gif
    url: str = ""  # the t.co link the text carries for it


class _Entities(_Model):
    media: list[_Media] = Field(default_factory=list)


class _ExtendedTweet(_Model):
    full_text: str
    entities: _Entities = Field(default_factory=_Entities)
    extended_entities: _Entities = Field(default_factory=_Entities)


class _TweetUser(_Model):
    id_str: Id
    screen_name: str = ""
    name: str = ""
    followers_count: int = Field(0, ge=0)


class _Tweet(_Model):
    id_str: Id  # never the numeric `id`: past 2^53 it has lost digits
    created_at: XTime
    text: str = ""
    truncated: bool = False
    extended_tweet: _ExtendedTweet | None = None  # the whole text of a post longer than 140
    user: _TweetUser
    in_reply_to_status_id_str: Id | None = None
    retweeted_status: dict[str, Any] | None = None
    entities: _Entities = Field(default_factory=_Entities)
    extended_entities: _Entities = Field(default_factory=_Entities)  # every photo, not only the first


class _DMAttachment(_Model):
    media: _Media | None = None


class _MessageData(_Model):
    text: str = ""
    attachment: _DMAttachment | None = None


class _Target(_Model):
    recipient_id: Id


class _MessageCreate(_Model):
    sender_id: Id
    target: _Target
    message_data: _MessageData


class _DMEvent(_Model):
    type: str
    id: Id
    created_timestamp: EpochMs
    message_create: _MessageCreate | None = None


class _Metrics(_Model):
    followers_count: int = Field(0, ge=0)


class _V2User(_Model):
    id: Id
    username: str = ""
    name: str = ""
    public_metrics: _Metrics = Field(default_factory=_Metrics)


class _DMUser(_Model):
    """A `users` entry: a v1.1 user in AAA, a v2 user wrapped in `data` in XAA's dm.received."""

    screen_name: str = ""
    name: str = ""
    followers_count: int = Field(0, ge=0)
    data: _V2User | None = None


class _DMs(_Model):
    direct_message_events: list[_DMEvent] = Field(default_factory=list)
    users: dict[str, _DMUser] = Field(default_factory=dict)


class _Activity(_DMs):
    """An AAA delivery. favorite/follow/typing/read/delete events are not read: they hold no question."""

    for_user_id: Id
    tweet_create_events: list[_Tweet] = Field(default_factory=list)


# X Activity API: v2 objects in an envelope.
class _Url(_Model):
    url: str
    media_key: str | None = None  # set on the t.co link that stands for a photo or video


class _PostEntities(_Model):
    urls: list[_Url] = Field(default_factory=list)


class _PostAttachments(_Model):
    media_keys: list[str] = Field(default_factory=list)


class _Reference(_Model):
    type: str  # retweeted, quoted, replied_to


class _NoteTweet(_Model):
    text: str


class _Post(_Model):
    id: Id
    text: str = ""
    note_tweet: _NoteTweet | None = None  # the whole text of a long post
    author_id: Id
    conversation_id: Id | None = None
    created_at: AwareDatetime
    entities: _PostEntities = Field(default_factory=_PostEntities)
    attachments: _PostAttachments = Field(default_factory=_PostAttachments)
    referenced_tweets: list[_Reference] = Field(default_factory=list)


class _MediaV2(_Model):
    media_key: str
    type: str


class _Includes(_Model):
    users: list[_V2User] = Field(default_factory=list)
    media: list[_MediaV2] = Field(default_factory=list)


class _Filter(_Model):
    user_id: Id | None = None


class _Event(_Model):
    event_uuid: str
    event_type: str
    filter: _Filter = Field(default_factory=_Filter)
    payload: dict[str, Any] = Field(default_factory=dict)  # its shape depends on event_type
    includes: _Includes = Field(default_factory=_Includes)


def _validate(model: type[M], value: object, where: str) -> M:
    try:
        return model.model_validate(value)
    except ValidationError as error:
        raise BadRequest("invalid_event", problems(error, where)) from error


def _without(text: str, links: Iterable[str]) -> str:
    """The text less the t.co links that stand for its media (the attachments say what they were)."""
    for link in links:
        if link:
            text = text.replace(link, "")
    return text.strip()


def _kinds(types: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(MEDIA_KINDS.get(kind, "file") for kind in types))


def _dm_author(user_id: str, user: _DMUser | None) -> Author:
    if user is None:
        return Author(id=user_id, handle=user_id)
    v2 = user.data
    handle = user.screen_name or (v2.username if v2 else "") or user.name or (v2.name if v2 else "")
    followers = user.followers_count or (v2.public_metrics.followers_count if v2 else 0)
    return Author(id=user_id, handle=handle or user_id, followers=followers)


def rate_limit_wait(headers: Mapping[str, str], now: float) -> float:
    """Seconds until X's rate-limit window resets (x-rate-limit-reset is an epoch second), at least 0;
    Retry-After, then a minute, when X doesn't say."""
    try:
        return max(0.0, float(headers.get("x-rate-limit-reset", "")) - now)
    except ValueError:  # absent or not a number: the other hints
        pass
    wait = retry_after(headers.get("Retry-After"))
    return RATE_LIMIT_WAIT_S if wait is None else wait


def _detail(answer: object) -> str:
    """What X said went wrong: v1.1-style {"errors": [{code, message}]} or v2's problem+json."""
    if not isinstance(answer, dict):
        return ""
    errors = answer.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict) and "detail" not in answer:
        first = errors[0]
        return f"code {first.get('code')}: {first.get('message', '')}"[:200]
    return str(answer.get("detail") or answer.get("title") or "")[:200]


def x_error(surface: str, status: int, headers: Mapping[str, str], answer: object) -> ChannelError:
    """A failed X API call as a ChannelError: 429 waits for the rate-limit window, 5xx is retried, any other
    answer (bad token 401, forbidden 403, invalid 400) is permanent."""
    text = f"X answered {status} to the {surface} reply: {_detail(answer)}"
    if status == 429:
        return ChannelError(text, retryable=True, retry_after=rate_limit_wait(headers, time.time()))
    if status == 403 and surface == "x_mention":
        text += (
            " (a self-serve X API app may reply only to a post whose author @mentioned or quoted the brand's"
            " account; otherwise answer from the X app or with an Enterprise app)"
        )
    return ChannelError(text, retryable=status >= 500)


@registered
class XChannel:
    name = "x"
    surfaces: tuple[str, ...] = ("x_mention", "x_dm")
    credentials = "BOT_X_USER_TOKEN, BOT_X_CONSUMER_SECRET and BOT_X_USER_ID"
    resend_safe = False

    def __init__(
        self, consumer_secret: str, user_token: str, user_id: str, api_url: str, session: aiohttp.ClientSession
    ) -> None:
        self._secret = consumer_secret.encode()
        self._token = user_token
        self._user_id = user_id
        self._api = api_url.rstrip("/")
        self._session = session

    @classmethod
    def configured(cls, settings: Settings) -> bool:
        return settings.x_user_token is not None  # Settings insists on the secret and the user id with it

    @classmethod
    def from_settings(cls, settings: Settings, session: aiohttp.ClientSession) -> XChannel:
        if settings.x_user_token is None or settings.x_consumer_secret is None or settings.x_user_id is None:
            raise ConfigError(f"X needs {cls.credentials}")
        return cls(
            settings.x_consumer_secret.get_secret_value(),
            settings.x_user_token.get_secret_value(),
            settings.x_user_id,
            settings.x_api_url,
            session,
        )

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        given = next((value for key, value in headers.items() if key.lower() == SIGNATURE_HEADER), None)
        if not given:
            raise Unauthentic("missing_signature", f"no {SIGNATURE_HEADER} header")
        if not hmac.compare_digest(given.encode(), sign(self._secret, body).encode()):
            raise Unauthentic("bad_signature", f"{SIGNATURE_HEADER} does not match the body")

    def handshake(self, query: Mapping[str, str]) -> Answer | None:
        """The CRC: X proves we hold the consumer secret by asking for crc_token's HMAC (on registration, on
        PUT /2/webhooks/:id, and periodically; a wrong answer stops deliveries)."""
        token = query.get("crc_token", "")
        if not token:
            return Answer(400, "crc_token is missing")
        body = json.dumps({"response_token": sign(self._secret, token.encode())})
        return Answer(200, body, "application/json")

    async def hand_over(self, message: InboundMessage) -> None:
        return None  # X has no inbox of its own to hand to

    def parse(self, body: bytes, received_at: datetime) -> list[InboundMessage]:
        """Mentions, replies and DMs written to the brand's account; its own posts and DMs, retweets, other
        activity and other subscribed accounts give nothing."""
        try:
            delivery = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise BadRequest("invalid_json", f"body is not JSON: {error}") from error
        except RecursionError as error:  # thousands of nested lists or objects
            raise BadRequest("invalid_json", "body is nested too deeply") from error
        if isinstance(delivery, dict) and "for_user_id" in delivery:
            activity = _validate(_Activity, delivery, "")
            if activity.for_user_id != self._user_id:
                return []  # the copy meant for another account subscribed to the same app
            posts = [self._tweet(tweet, received_at) for tweet in activity.tweet_create_events]
            return [message for message in [*posts, *self._dms(activity, received_at)] if message is not None]
        if isinstance(delivery, dict) and "data" in delivery:
            data = delivery["data"]  # the published examples carry one event; a list is taken as well
            events = [_validate(_Event, item, "data") for item in (data if isinstance(data, list) else [data])]
            return [message for event in events for message in self._event(event, received_at)]
        raise BadRequest("invalid_event", "neither for_user_id (Account Activity) nor data (X Activity) in body")

    def _tweet(self, tweet: _Tweet, received_at: datetime) -> InboundMessage | None:
        if tweet.user.id_str == self._user_id or tweet.retweeted_status is not None:
            return None
        full = tweet.extended_tweet if tweet.truncated and tweet.extended_tweet else None
        carrier = full or tweet  # a long post's media are listed in its extended_tweet
        media = carrier.extended_entities.media or carrier.entities.media
        text = _without(full.full_text if full else tweet.text, (item.url for item in media))
        kinds = _kinds(item.type for item in media)
        if not text and not kinds:
            return None
        user = tweet.user
        return inbound(
            "invalid_event",
            channel="x_mention",
            id=tweet.id_str,
            conversation_id=tweet.in_reply_to_status_id_str or tweet.id_str,
            text=text,
            author=Author(
                id=user.id_str, handle=user.screen_name or user.name or user.id_str, followers=user.followers_count
            ),
            created_at=tweet.created_at,
            public=True,
            received_at=received_at,
            attachments=kinds,
        )

    def _dms(self, dms: _DMs, received_at: datetime) -> list[InboundMessage]:
        messages = []
        for event in dms.direct_message_events:
            create = event.message_create
            if event.type != "message_create" or create is None or create.sender_id == self._user_id:
                continue  # not a message, or the brand's own (sent from the app, or by this bot)
            attachment = create.message_data.attachment
            media = [attachment.media] if attachment and attachment.media else []
            text = _without(create.message_data.text, (item.url for item in media))
            kinds = _kinds(item.type for item in media)
            if not text and not kinds:
                continue
            messages.append(
                inbound(
                    "invalid_event",
                    channel="x_dm",
                    id=event.id,
                    conversation_id=create.sender_id,  # the other participant: what the DM send addresses
                    text=text,
                    author=_dm_author(create.sender_id, dms.users.get(create.sender_id)),
                    created_at=event.created_timestamp,
                    public=False,
                    received_at=received_at,
                    attachments=kinds,
                )
            )
        return messages

    def _event(self, event: _Event, received_at: datetime) -> list[InboundMessage]:
        if event.filter.user_id != self._user_id:
            return []  # another subscribed account's activity
        if event.event_type == "dm.received":
            return self._dms(_validate(_DMs, event.payload, "data.payload"), received_at)
        if event.event_type == "post.mention.create":
            post = self._post(_validate(_Post, event.payload, "data.payload"), event.includes, received_at)
            return [post] if post else []
        return []  # dm.sent (the brand's own), likes, follows, profile changes…

    def _post(self, post: _Post, includes: _Includes, received_at: datetime) -> InboundMessage | None:
        if post.author_id == self._user_id or any(ref.type == "retweeted" for ref in post.referenced_tweets):
            return None
        media = [item.type for item in includes.media if item.media_key in post.attachments.media_keys]
        links = (url.url for url in post.entities.urls if url.media_key)
        text = _without(post.note_tweet.text if post.note_tweet else post.text, links)
        kinds = _kinds(media)
        if not text and not kinds:
            return None
        user = next((user for user in includes.users if user.id == post.author_id), None)
        return inbound(
            "invalid_event",
            channel="x_mention",
            id=post.id,
            conversation_id=post.conversation_id or post.id,
            text=text,
            author=Author(
                id=post.author_id,
                handle=(user.username or user.name) if user else post.author_id,
                followers=user.public_metrics.followers_count if user else 0,
            ),
            created_at=post.created_at,
            public=True,
            received_at=received_at,
            attachments=kinds,
        )

    async def send(self, reply: Reply) -> str | None:
        """A mention is answered with a reply post, a DM with a DM to its sender; the new post's or DM
        event's id. A text X would refuse (over 280 weighted for a post, 10,000 for a DM) is not sent."""
        surface, text = reply.message.channel, reply.text
        if surface not in self.surfaces:
            raise ChannelError(f"X has no surface {surface!r}", retryable=False)
        length, limit = reply_length(surface, text), max_chars(surface)
        if not text.strip() or length > limit:
            raise ChannelError(f"X would refuse a {surface} of {length} characters (1 to {limit})", retryable=False)
        if surface == "x_mention":
            body: dict[str, Any] = {"text": text, "reply": {"in_reply_to_tweet_id": reply.message.id}}
            sent = await self._post_json(surface, "/2/tweets", body)
            return str(sent["id"]) if "id" in sent else None
        path = f"/2/dm_conversations/with/{reply.message.conversation_id}/messages"
        sent = await self._post_json(surface, path, {"text": text})
        return str(sent["dm_event_id"]) if "dm_event_id" in sent else None

    async def _post_json(self, surface: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """One X API v2 POST with the brand's user token; the answer's `data`, or ChannelError."""
        headers = {"Authorization": f"Bearer {self._token}"}
        try:
            async with self._session.post(self._api + path, json=body, headers=headers) as response:
                try:
                    answer = json.loads(await response.read())
                except (UnicodeDecodeError, json.JSONDecodeError):  # a proxy's HTML page: the status says enough
                    answer = None
                if response.status < 300:
                    data = answer.get("data") if isinstance(answer, dict) else None
                    return data if isinstance(data, dict) else {}
                raise x_error(surface, response.status, response.headers, answer)
        except (aiohttp.ClientError, TimeoutError) as error:
            raise ChannelError(f"X unreachable: {type(error).__name__}", retryable=True) from error
