"""The records that flow between stages. Stages exchange these, never loose dicts."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Author(Record):
    id: str = Field(min_length=1)
    handle: str
    followers: int = Field(0, ge=0)


class InboundMessage(Record):
    """One customer message as a channel parsed it."""

    channel: str
    id: str = Field(min_length=1, max_length=256)
    conversation_id: str = Field(min_length=1, max_length=256)
    text: str = Field(max_length=20_000)
    author: Author
    created_at: AwareDatetime
    public: bool
    received_at: AwareDatetime
    attachments: tuple[str, ...] = ()  # kinds of what came besides words: "image", "audio", "sticker", …

    @property
    def key(self) -> str:
        return f"{self.channel}:{self.id}"


class RiskFlag(Record):
    name: str
    priority: str
    evidence: str


class Classification(Record):
    intent: str
    confidence: float
    sentiment: str | None = None  # negative / neutral / positive; None where no sentiment model ran
    sentiment_score: float | None = None  # the model's probability of that sentiment
    risk_flags: tuple[RiskFlag, ...] = ()
    language: str = "en"  # "en" unless the encoder surely can't read it; then its code, or "und" (bot/script.py)


class Draft(Record):
    """What a drafter proposes; `answerable` is False when it could not ground an answer."""

    text: str
    answerable: bool
    sources: tuple[str, ...] = ()  # the knowledge passages it states facts from
    retrieved: tuple[str, ...] = ()  # the passages it was given
    checks: tuple[str, ...] = ()  # what fitting it to the channel found unsafe (policy rules `draft:<check>`)
    drafter: str
    note: str = ""


class Action(StrEnum):
    AUTO_SEND = "auto_send"
    REVIEW = "review"
    IGNORE = "ignore"


class Priority(StrEnum):
    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"

    @property
    def rank(self) -> int:
        """0 for the most pressing: the queue, a case's priority and replay's figures all order by it."""
        return _PRIORITY_ORDER.index(self)


_PRIORITY_ORDER = tuple(Priority)


class Decision(Record):
    """What happens to a message, and every rule that fired (`reasons`), so a reviewer and a replay see why."""

    action: Action
    reasons: tuple[str, ...]
    priority: Priority = Priority.NORMAL
    deadline: AwareDatetime | None = None  # when a reviewer must have answered (review only)
    holding: bool = False  # reviewers are off: the customer gets a holding reply at once
    shadow: Action | None = None  # an intent in shadow mode: what the bot would have done alone


class Turn(Record):
    role: str  # "customer" or "brand"
    text: str
    at: AwareDatetime
    intent: str | None = None  # a customer turn: what it was classified as
    origin: str | None = None  # a brand turn: "bot", "reviewer" or "holding"


class Context(Record):
    """What the pipeline knows of the conversation before this message."""

    turns: tuple[Turn, ...] = ()
    handed_to: str | None = None  # a reviewer took the conversation over: the bot stays out of it


class Reply(Record):
    """An answer on its way out, carrying the message it answers (channels need its ids; a failed
    delivery becomes a review case with it). reply_id is stable so a receiver can recognise a redelivery."""

    reply_id: str
    message: InboundMessage
    text: str
    origin: str  # "bot", "reviewer" or "holding"


class Status(StrEnum):
    RECEIVED = "received"
    PROCESSING = "processing"
    SENT = "sent"
    IN_REVIEW = "in_review"
    REJECTED = "rejected"
    IGNORED = "ignored"
    COALESCED = "coalesced"  # answered together with a later message of the same burst
    HANDED_OVER = "handed_over"  # people answer this conversation from now on, outside the bot


class CaseState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    HANDED_OVER = "handed_over"


class ReviewCase(Record):
    case_id: str
    message: InboundMessage
    classification: Classification | None
    draft: Draft | None
    decision: Decision
    state: CaseState = CaseState.PENDING
    created_at: datetime
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    resolution: str | None = None  # the text sent (approved), or the reason (rejected, handed over)


class Outcome(Record):
    """Everything the pipeline concluded about one message; the worker writes its effects."""

    message: InboundMessage
    classification: Classification
    draft: Draft | None
    decision: Decision
    holding_reply: str | None = None  # sent at once when the reviewers are off


class MessageState(Record):
    """Where a message is, as the status API reports it."""

    channel: str
    message_id: str
    status: Status
    intent: str | None = None
    confidence: float | None = None
    decision: Action | None = None
    reasons: tuple[str, ...] = ()
    reply: str | None = None
    case_id: str | None = None
    updated_at: datetime
