"""Redis for messages: the inbound and outbox streams, dedup, message states, conversations (cases.py: reviews).

Every write that finishes a step (a message's effects, a delivery, a reviewer's action) happens in one
MULTI/EXEC together with the XACK of the entry that caused it, guarded by a WATCHed "done" key, so a
redelivered or reclaimed entry can never produce a second effect. Steps finished at the same time (a batch's
messages, concurrent deliveries) share one such transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TypeVar, cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import ResponseError, WatchError

from bot.batching import MicroBatcher
from bot.cases import ReviewCases, open_case
from bot.models import (
    Action,
    Context,
    InboundMessage,
    MessageState,
    Outcome,
    Reply,
    ReviewCase,
    Status,
    Turn,
)
from bot.records import RATE_TTL_S, Keys, moved, now, state_record, tally, this_minute

T = TypeVar("T")
INBOUND_GROUP = "workers"
OUTBOX_GROUP = "senders"
HISTORY_TURNS = 20
Effects = Callable[[Pipeline], None]
MAX_ENQUEUE = 256  # messages per enqueue script: Redis does nothing else while one runs (~3 ms at most)
MAX_STEPS = 128  # finished entries per transaction

# Dedup and enqueue in one atomic step: a message id is either new (its state, its entry in the stream, its place
# in its conversation's order) or a duplicate (its state key exists: it lives as long as the dedup window, and
# longer when the message moves on).
# KEYS: the inbound stream, this minute's "received" counter, then (state, order) per message;
# ARGV: the dedup TTL, the counter's TTL, then (payload, state, message key) per message.
_ENQUEUE = """
local flags, fresh = {}, 0
for i = 1, (#KEYS - 2) / 2 do
  if redis.call('SET', KEYS[2 * i + 1], ARGV[3 * i + 1], 'NX', 'EX', ARGV[1]) then
    redis.call('XADD', KEYS[1], '*', 'm', ARGV[3 * i])
    redis.call('RPUSH', KEYS[2 * i + 2], ARGV[3 * i + 2])
    redis.call('EXPIRE', KEYS[2 * i + 2], ARGV[1])
    flags[i] = 1
    fresh = fresh + 1
  else
    flags[i] = 0
  end
end
if fresh > 0 then
  redis.call('INCRBY', KEYS[2], fresh)
  redis.call('EXPIRE', KEYS[2], ARGV[2])
end
return flags
"""
# Just before a send: a reply already delivered (its done key) is not sent again; else it is marked as being sent,
# unless an earlier attempt's mark is still there. KEYS: (done, sending) per reply; ARGV: the TTL, then the
# consumer per reply. Returns 2 (delivered), 1 (clear to send) or 0 (in doubt) per reply.
_BEGIN = """
local out = {}
for i = 1, #KEYS / 2 do
  if redis.call('EXISTS', KEYS[2 * i - 1]) == 1 then
    out[i] = 2
  elseif redis.call('SET', KEYS[2 * i], ARGV[i + 1], 'NX', 'EX', ARGV[1]) then
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
"""
# GCRA: KEYS[1] holds when the next send is theoretically due (ms, Redis's clock); ARGV: interval, burst (ms).
_PACE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
local interval = tonumber(ARGV[1])
redis.call('SET', KEYS[1], due + interval, 'PX', due + interval - now + 1000)
return math.max(0, due - now - tonumber(ARGV[2]))
"""


class Begun(Enum):
    """What begin_send found: the reply may go out, went out before (a crash lost its ack), or is in doubt."""

    IN_DOUBT = 0
    CLEAR = 1
    DELIVERED = 2


@dataclass(frozen=True)
class Entry:
    """A stream entry handed to a consumer; `deliveries` counts how often it was handed out."""

    entry_id: str
    payload: str
    deliveries: int = 1


@dataclass(frozen=True)
class _Step:
    """An entry finished: its effects (written once per key, however often the entry is handled) and its ack."""

    stream: str
    group: str
    entry_id: str
    key: str
    effects: Effects


def _rows(out: list[T], start: int, stop: int) -> list[T]:
    return out[start:stop]


class RedisStore(ReviewCases):
    """The service's durable state in Redis (the review cases' part is cases.py's); one instance per process,
    shared by all tasks."""

    def __init__(self, redis: Redis, prefix: str, *, ttl_s: int) -> None:
        super().__init__(redis, Keys(prefix), ttl_s)
        self._enqueue = redis.register_script(_ENQUEUE)
        self._pace_script = redis.register_script(_PACE)
        self._begin_script = redis.register_script(_BEGIN)
        # Concurrent callers share a round trip (see batching.py): messages at intake, finished steps, a
        # sender's deliveries beginning, and state reads (a delivery reads its message's state).
        self._intake = MicroBatcher(self._enqueue_now, _rows, MAX_ENQUEUE, "enqueue")
        self._steps = MicroBatcher(self._finish, _rows, MAX_STEPS, "finish")
        self._begins = MicroBatcher(self._begin_now, _rows, MAX_STEPS, "begin-send")
        self._states = MicroBatcher(self._states_now, _rows, MAX_STEPS, "states")

    async def setup(self) -> None:
        """Create both consumer groups; an existing group is fine, any other error is not."""
        for stream, group in ((self.keys.inbound, INBOUND_GROUP), (self.keys.outbox, OUTBOX_GROUP)):
            try:
                await self.redis.xgroup_create(stream, group, id="0", mkstream=True)
            except ResponseError as error:
                if "BUSYGROUP" not in str(error):  # only "group already exists" is expected
                    raise

    # -- intake ---------------------------------------------------------------------------------------------

    async def enqueue(self, messages: Sequence[InboundMessage]) -> list[bool]:
        """Store new messages durably; returns, for each, True if new and False if seen before. Concurrent
        requests' messages share one script call (a round trip each is a third of the webhook's throughput)."""
        if not messages:
            return []
        return await self._intake.submit(messages)

    async def _enqueue_now(self, messages: list[InboundMessage]) -> list[bool]:
        keys = [self.keys.inbound, self.keys.rate("received", this_minute())]
        args: list[str | int] = [self.ttl_s, RATE_TTL_S]
        for message in messages:
            keys += [
                self.keys.state(message.channel, message.id),
                self.keys.order(message.channel, message.conversation_id),
            ]
            args += [message.model_dump_json(), state_record(message, Status.RECEIVED), message.key]
        flags = await self._enqueue(keys=keys, args=args)
        return [bool(flag) for flag in flags]

    # -- consuming ------------------------------------------------------------------------------------------

    async def read(self, stream: str, group: str, consumer: str, count: int, block_ms: int | None) -> list[Entry]:
        """New entries for this consumer, waiting at most block_ms (None: only what is there now)."""
        answer = cast(
            list[tuple[str, list[tuple[str, dict[str, str]]]]],
            await self.redis.xreadgroup(group, consumer, {stream: ">"}, count=count, block=block_ms),
        )
        return [Entry(entry_id, fields["m"]) for _, entries in answer for entry_id, fields in entries]

    async def queued_before(self, conversations: Sequence[tuple[str, str]], depth: int) -> list[list[str]]:
        """Each conversation's first `depth` unfinished message keys, oldest first."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for channel, conversation_id in conversations:
                pipe.lrange(self.keys.order(channel, conversation_id), 0, depth - 1)
            return [list(keys) for keys in await pipe.execute()]

    async def drop_if_finished(self, channel: str, conversation_id: str, key: str) -> bool:
        """Take a message out of its conversation's order if it is finished (or forgotten) while still listed
        there, which only a crash between steps or an older version can leave behind; True if dropped."""
        _, _, message_id = key.partition(":")
        state = await self.message_state(channel, message_id)
        if state is not None and state.status is Status.RECEIVED:
            return False
        await self.redis.lrem(self.keys.order(channel, conversation_id), 1, key)
        return True

    async def reclaim(self, stream: str, group: str, consumer: str, idle_ms: int, count: int) -> list[Entry]:
        """Take over entries another consumer left pending for idle_ms (it died, or hangs)."""
        answer = await self.redis.xautoclaim(stream, group, consumer, idle_ms, "0-0", count=count)
        # Redis 7 lists entries deleted since they were read; Redis 6.2 returns them with no fields.
        gone = list(answer[2]) if len(answer) > 2 else []
        entries = []
        for entry_id, fields in answer[1]:
            if not fields:
                gone.append(entry_id)
                continue
            pending = await self.redis.xpending_range(stream, group, min=entry_id, max=entry_id, count=1)
            deliveries = int(pending[0]["times_delivered"]) if pending else 1
            entries.append(Entry(entry_id, fields["m"], deliveries))
        if gone:  # nothing left to do for them, but they would stay pending forever
            await self.redis.xack(stream, group, *gone)
        return entries

    async def touch(self, stream: str, group: str, consumer: str, entry_ids: list[str]) -> None:
        """Reset entries' idle time while they are legitimately still being worked on (slow model, retries).

        JUSTID: the delivery counter is left alone, so touching never pushes an entry towards the dead letters.
        """
        await self.redis.xclaim(stream, group, consumer, 0, entry_ids, justid=True)  # type: ignore[arg-type]

    async def pending_count(self, stream: str, group: str) -> int:
        summary = await self.redis.xpending(stream, group)
        return int(summary["pending"])

    # -- effects of the pipeline ----------------------------------------------------------------------------

    async def commit(self, entry_id: str, outcome: Outcome, reply: Reply | None, case: ReviewCase | None) -> bool:
        """Write a message's effects and ack it, at most once per message; False if already done."""
        message, decision, cls = outcome.message, outcome.decision, outcome.classification
        fields: dict[str, object] = {
            "intent": cls.intent,
            "confidence": round(cls.confidence, 4),
            "decision": decision.action,
            "reasons": decision.reasons,
        }
        if decision.action is Action.AUTO_SEND:
            state = state_record(message, Status.PROCESSING, reply=reply.text if reply else None, **fields)
        elif decision.action is Action.REVIEW:
            state = state_record(
                message,
                Status.IN_REVIEW,
                case_id=case.case_id if case else None,
                reply=outcome.draft.text if outcome.draft else None,
                **fields,
            )
        else:
            state = state_record(message, Status.IGNORED, **fields)

        def effects(pipe: Pipeline) -> None:
            pipe.set(self.keys.state(message.channel, message.id), state, ex=self.ttl_s)
            pipe.lrem(self.keys.order(message.channel, message.conversation_id), 1, message.key)
            if decision.action is not Action.IGNORE:
                turn = Turn(role="customer", text=message.text, at=message.created_at, intent=cls.intent)
                self._add_turn(pipe, message.channel, message.conversation_id, turn)
            if reply is not None:
                pipe.xadd(self.keys.outbox, {"m": reply.model_dump_json()})
            if case is not None:
                open_case(pipe, self.keys, case)

        return await self._once(self.keys.inbound, INBOUND_GROUP, entry_id, message.key, effects)

    async def coalesced(self, entry_id: str, message: InboundMessage, into: InboundMessage) -> bool:
        """A message answered together with a later one of its burst: its state says which; acked once."""
        state = state_record(message, Status.COALESCED, reasons=(f"coalesced_into:{into.id}",))

        def effects(pipe: Pipeline) -> None:
            pipe.set(self.keys.state(message.channel, message.id), state, ex=self.ttl_s)
            pipe.lrem(self.keys.order(message.channel, message.conversation_id), 1, message.key)

        return await self._once(self.keys.inbound, INBOUND_GROUP, entry_id, message.key, effects)

    async def dead_letter(self, stream: str, group: str, entry: Entry, key: str, case: ReviewCase) -> bool:
        """Give up on an entry after too many attempts: keep it in the dead stream and put it before a human."""
        message = case.message
        current = await self.message_state(message.channel, message.id)
        update: dict[str, object] = {
            "status": Status.IN_REVIEW,
            "case_id": case.case_id,
            "reasons": (current.reasons if current else ()) + case.decision.reasons,
        }
        if case.draft is not None:
            update["reply"] = case.draft.text
        state = moved(message, current, update)

        def effects(pipe: Pipeline) -> None:
            pipe.xadd(self.keys.dead, {"stream": stream, "m": entry.payload, "reason": case.decision.reasons[0]})
            pipe.set(self.keys.state(message.channel, message.id), state, ex=self.ttl_s)
            if stream == self.keys.inbound:  # the conversation's later messages may go on
                pipe.lrem(self.keys.order(message.channel, message.conversation_id), 1, message.key)
            open_case(pipe, self.keys, case)

        return await self._once(stream, group, entry.entry_id, f"dead:{key}", effects)

    async def begin_send(self, reply_id: str, consumer: str) -> Begun:
        """Record that a reply is about to go out (CLEAR), unless it was delivered before (DELIVERED: its sender
        died before acking it) or an earlier attempt began and never finished (IN_DOUBT: its sender died
        mid-send, and the platform may or may not have the reply). Concurrent deliveries share one call."""
        return (await self._begins.submit([(reply_id, consumer)]))[0]

    async def _begin_now(self, sends: list[tuple[str, str]]) -> list[Begun]:
        keys = [
            key for reply_id, _ in sends for key in (self.keys.done(f"reply:{reply_id}"), self.keys.sending(reply_id))
        ]
        answers = await self._begin_script(keys=keys, args=[self.ttl_s, *(consumer for _, consumer in sends)])
        return [Begun(int(answer)) for answer in answers]

    async def send_failed(self, reply_id: str) -> None:
        """The platform refused the attempt: nothing went out, the next attempt may begin."""
        await self.redis.delete(self.keys.sending(reply_id))

    async def pace(self, surface: str, per_second: float) -> float:
        """Reserve the next send slot of a surface, shared by every process (a GCRA on Redis's clock, with a
        second's worth of burst); the seconds to wait before using it."""
        interval_ms = max(1, round(1000 / per_second))
        burst_ms = interval_ms * (max(1, int(per_second)) - 1)
        wait_ms = await self._pace_script(keys=[self.keys.pace(surface)], args=[interval_ms, burst_ms])
        return int(wait_ms) / 1000

    async def delivered(self, entry_id: str, reply: Reply) -> bool:
        """Record a successful delivery and ack the outbox entry."""
        message = reply.message
        current = await self.message_state(message.channel, message.id)
        state = moved(message, current, {"status": Status.SENT, "reply": reply.text})

        def effects(pipe: Pipeline) -> None:
            pipe.delete(self.keys.sending(reply.reply_id))
            if reply.origin != "holding":  # a holding reply leaves the message with its reviewer
                pipe.set(self.keys.state(message.channel, message.id), state, ex=self.ttl_s)
            turn = Turn(role="brand", text=reply.text, at=now(), origin=reply.origin)
            self._add_turn(pipe, message.channel, message.conversation_id, turn)
            tally(pipe, self.keys, "sent")

        return await self._once(self.keys.outbox, OUTBOX_GROUP, entry_id, f"reply:{reply.reply_id}", effects)

    async def ack(self, stream: str, group: str, entry_id: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(stream, group, entry_id)
            pipe.xdel(stream, entry_id)
            await pipe.execute()

    async def _once(self, stream: str, group: str, entry_id: str, key: str, effects: Effects) -> bool:
        """Apply `effects` and ack the entry, unless `key` is already done (then only ack); False if it was.
        Concurrent calls (a batch's commits, the sender's deliveries) share one transaction (see _finish)."""
        return (await self._steps.submit([_Step(stream, group, entry_id, key, effects)]))[0]

    async def _finish(self, steps: list[_Step]) -> list[bool]:
        """One WATCH, one MGET and one MULTI/EXEC for all the steps, instead of three round trips each. If
        another consumer finishes one of the keys meanwhile, the whole transaction is looked at again."""
        done = [self.keys.done(step.key) for step in steps]
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(*done)
                    seen = await pipe.mget(done)
                    first, taken = [], set()
                    for key, value in zip(done, seen, strict=True):
                        first.append(value is None and key not in taken)  # a key twice in one call: once
                        taken.add(key)
                    pipe.multi()
                    acks: dict[tuple[str, str], list[str]] = {}
                    for step, key, new in zip(steps, done, first, strict=True):
                        if new:
                            pipe.set(key, "1", ex=self.ttl_s)
                            step.effects(pipe)
                        acks.setdefault((step.stream, step.group), []).append(step.entry_id)
                    for (stream, group), entry_ids in acks.items():
                        pipe.xack(stream, group, *entry_ids)
                        pipe.xdel(stream, *entry_ids)
                    await pipe.execute()
                    return first
                except WatchError:  # another consumer finished one of the keys meanwhile: look again
                    continue

    def _add_turn(self, pipe: Pipeline, channel: str, conversation_id: str, turn: Turn) -> None:
        key = self.keys.conversation(channel, conversation_id)
        pipe.rpush(key, turn.model_dump_json())
        pipe.ltrim(key, -HISTORY_TURNS, -1)
        pipe.expire(key, self.ttl_s)

    # -- reading state --------------------------------------------------------------------------------------

    async def message_state(self, channel: str, message_id: str) -> MessageState | None:
        """A message's state (None once forgotten); concurrent reads share one MGET."""
        return (await self._states.submit([(channel, message_id)]))[0]

    async def _states_now(self, messages: list[tuple[str, str]]) -> list[MessageState | None]:
        raws = await self.redis.mget([self.keys.state(channel, message_id) for channel, message_id in messages])
        return [MessageState.model_validate_json(raw) if raw else None for raw in raws]

    async def conversation(self, channel: str, conversation_id: str) -> Context:
        return (await self.conversations([(channel, conversation_id)]))[0]

    async def conversations(self, conversations: Sequence[tuple[str, str]]) -> list[Context]:
        """Each (channel, conversation id)'s turns so far and hand-over, in one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for channel, conversation_id in conversations:
                pipe.lrange(self.keys.conversation(channel, conversation_id), 0, -1)
                pipe.get(self.keys.handover(channel, conversation_id))
            answers = await pipe.execute()
        return [
            Context(turns=tuple(Turn.model_validate_json(item) for item in raw), handed_to=handed_to)
            for raw, handed_to in zip(answers[::2], answers[1::2], strict=True)
        ]
