"""Key names and the records kept in Redis, shared by the message store (store.py) and the review cases
(cases.py): both write a message's state and count what happened per minute."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from redis.asyncio.client import Pipeline

from bot.models import InboundMessage, MessageState, Status

RATE_TTL_S = 3600  # per-minute counters (`python -m bot status` reads the last 15 minutes)


class Keys:
    """All key names, from one prefix, so tests and tenants never collide."""

    def __init__(self, prefix: str) -> None:
        self.inbound = f"{prefix}:inbound"
        self.outbox = f"{prefix}:outbox"
        self.dead = f"{prefix}:dead"
        self.audit = f"{prefix}:audit"
        self.reviews = f"{prefix}:reviews"
        self.learning = f"{prefix}:learning"
        self.incidents = f"{prefix}:incidents"  # topic -> JSON, written by the incident brake
        self._p = prefix

    def state(self, channel: str, message_id: str) -> str:
        return f"{self._p}:state:{channel}:{message_id}"

    def done(self, entry_key: str) -> str:
        return f"{self._p}:done:{entry_key}"

    def conversation(self, channel: str, conversation_id: str) -> str:
        return f"{self._p}:conv:{channel}:{conversation_id}"

    def case(self, case_id: str) -> str:
        return f"{self._p}:case:{case_id}"

    def claim(self, case_id: str) -> str:
        return f"{self._p}:claim:{case_id}"

    def handover(self, channel: str, conversation_id: str) -> str:
        return f"{self._p}:human:{channel}:{conversation_id}"

    def order(self, channel: str, conversation_id: str) -> str:
        """The conversation's unfinished messages, in the order they arrived (workers take them in turn)."""
        return f"{self._p}:order:{channel}:{conversation_id}"

    def sending(self, reply_id: str) -> str:
        return f"{self._p}:sending:{reply_id}"

    def pace(self, surface: str) -> str:
        return f"{self._p}:pace:{surface}"

    def rate(self, what: str, minute: int) -> str:
        """How many of `what` (received, sent, resolved) happened in that minute since the epoch."""
        return f"{self._p}:rate:{what}:{minute}"

    def breached(self, case_id: str) -> str:
        return f"{self._p}:breached:{case_id}"


def this_minute() -> int:
    return int(time.time() // 60)


def now() -> datetime:
    return datetime.now(UTC)


def state_record(message: InboundMessage, status: Status, **fields: object) -> str:
    record = MessageState(
        channel=message.channel,
        message_id=message.id,
        status=status,
        updated_at=now(),
        **fields,  # type: ignore[arg-type]
    )
    return record.model_dump_json()


def moved(message: InboundMessage, current: MessageState | None, update: dict[str, object]) -> str:
    """A message's state after a later step, keeping what earlier steps recorded (intent, decision...)."""
    if current is None:
        return state_record(message, **update)  # type: ignore[arg-type]
    return current.model_copy(update={**update, "updated_at": now()}).model_dump_json()


def tally(pipe: Pipeline, keys: Keys, what: str) -> None:
    """One more `what` this minute, for the rates `python -m bot status` shows."""
    key = keys.rate(what, this_minute())
    pipe.incr(key)
    pipe.expire(key, RATE_TTL_S)
