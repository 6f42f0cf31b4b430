"""The consumers: the worker runs the pipeline on inbound messages, the sender delivers the outbox.

Both read their stream through a consumer group, reclaim what dead consumers left pending, and ack an
entry only in the same transaction that records its effects (see store.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import ClassVar

from redis.exceptions import RedisError

from bot.channels import by_surface
from bot.channels.base import Channel
from bot.coalesce import bursts, in_turn, joined
from bot.config import Settings
from bot.errors import ChannelError
from bot.incident import IncidentStore, watch
from bot.logs import log_context, message_fields
from bot.metrics import Metrics
from bot.models import Action, Decision, Draft, InboundMessage, Outcome, Priority, Reply, ReviewCase
from bot.pipeline import Pipeline
from bot.store import INBOUND_GROUP, OUTBOX_GROUP, Begun, Entry, RedisStore

logger = logging.getLogger(__name__)

READ_BLOCK_MS = 1000
ORDER_DEPTH = 64  # a conversation's unfinished messages looked at per batch


def stable_id(prefix: str, key: str) -> str:
    """Ids derived from the message key, so a replayed step writes the same case or reply, not a second one."""
    return prefix + hashlib.sha256(key.encode()).hexdigest()[:20]


def effects(outcome: Outcome, now: datetime) -> tuple[Reply | None, ReviewCase | None]:
    """The reply to send and the case to open for a decided message (a holding reply goes with its case)."""
    message, decision = outcome.message, outcome.decision
    if decision.action is Action.AUTO_SEND and outcome.draft is not None:
        return Reply(
            reply_id=stable_id("r_", message.key), message=message, text=outcome.draft.text, origin="bot"
        ), None
    if decision.action is Action.REVIEW:
        holding = None
        if outcome.holding_reply:
            holding = Reply(
                reply_id=stable_id("h_", message.key), message=message, text=outcome.holding_reply, origin="holding"
            )
        return holding, ReviewCase(
            case_id=stable_id("c_", message.key),
            message=message,
            classification=outcome.classification,
            draft=outcome.draft,
            decision=decision,
            created_at=now,
        )
    return None, None


def verdict(outcome: Outcome, reply: Reply | None, case: ReviewCase | None) -> dict[str, object]:
    """What a committed message's log line says of it: how it was read, what was decided and why, and the ids
    of its effects (one line a message: the worker's hottest, so the decision is not logged on its own)."""
    cls, decision = outcome.classification, outcome.decision
    return {
        "intent": cls.intent,
        "confidence": round(cls.confidence, 2),
        "sentiment": cls.sentiment,
        "language": cls.language,
        "action": decision.action.value,
        "reasons": list(decision.reasons),
        "reply_id": reply.reply_id if reply else None,
        "case_id": case.case_id if case else None,
    }


def _keys(entries: list[Entry]) -> list[str]:
    """The keys of the messages a batch of either stream is about, for its log line."""
    keys = []
    for entry in entries:
        try:
            data = json.loads(entry.payload)
            message = data.get("message", data)  # an outbox entry is a reply around its message
            keys.append(f"{message['channel']}:{message['id']}")
        except (ValueError, TypeError, KeyError, AttributeError):  # a malformed entry fails where it is handled
            keys.append(entry.entry_id)
    return keys


def escalation(message: InboundMessage, reason: str, case_key: str, draft: Draft | None = None) -> ReviewCase:
    """A high-priority case for a human when the machinery itself failed (processing or delivery)."""
    return ReviewCase(
        case_id=stable_id("c_", case_key),
        message=message,
        classification=None,
        draft=draft,
        decision=Decision(action=Action.REVIEW, reasons=(reason,), priority=Priority.HIGH),
        created_at=datetime.now(UTC),
    )


class Consumer(ABC):
    """The loop the worker and the sender share: read (or reclaim) batches of one stream's entries through a
    consumer group until `stopping` is set; the batch in hand is finished before run() returns."""

    stream_name: ClassVar[str]  # "inbound" or "outbox"
    group: ClassVar[str]

    def __init__(self, store: RedisStore, stream: str, settings: Settings, metrics: Metrics, consumer: str) -> None:
        self.store = store
        self.stream = stream
        self.settings = settings
        self.metrics = metrics
        self.consumer = consumer
        self.in_flight: dict[str, asyncio.Task[None]] = {}  # by entry id: what this consumer is working on

    @abstractmethod
    async def handle(self, entries: list[Entry]) -> None:
        """Finish each entry: write its effects and ack it, or leave it pending to be retried."""

    @abstractmethod
    async def take(self, entries: list[Entry]) -> None:
        """Start handling a batch it read (see start()), and return when there is room to read more."""

    def start(self, entries: list[Entry], work: Coroutine[object, object, None]) -> None:
        """Run `work` on `entries` as a task of its own (see fresh(): entries already in hand are left out)."""
        task = asyncio.create_task(work)
        for entry in entries:
            self.in_flight[entry.entry_id] = task
        task.add_done_callback(partial(self._done, [entry.entry_id for entry in entries]))

    def wanted(self) -> int:
        """How many entries to read (or reclaim) next."""
        return self.settings.worker_batch

    async def room(self, most: int) -> None:
        """Wait until fewer than `most` entries are in hand."""
        while len(self.in_flight) >= most:
            await asyncio.wait(set(self.in_flight.values()), return_when=asyncio.FIRST_COMPLETED)

    def fresh(self, entries: list[Entry]) -> list[Entry]:
        """The entries not already in hand (reclaimed from ourselves while their work was slow)."""
        return [entry for entry in entries if entry.entry_id not in self.in_flight]

    def _done(self, entry_ids: list[str], task: asyncio.Task[None]) -> None:
        for entry_id in entry_ids:
            self.in_flight.pop(entry_id, None)
        error = None if task.cancelled() else task.exception()
        if isinstance(error, RedisError | OSError):  # Redis restarting: the entries stay pending, reclaimed later
            logger.warning("redis unavailable stream=%s error=%r; entries left pending", self.stream_name, error)
        elif error is not None:  # a bug: left pending, reclaimed and retried, then dead-lettered
            logger.error("%s crashed entries=%s", self.stream_name, ",".join(entry_ids), exc_info=error)

    async def run(self, stopping: asyncio.Event) -> None:
        """Read and start batches until `stopping`, then finish what is in hand (cancelled by the shutdown
        timeout: what is left stays pending and is reclaimed by another consumer)."""
        try:
            await self._consume(stopping)
            await asyncio.gather(*set(self.in_flight.values()), return_exceptions=True)
        finally:
            tasks = set(self.in_flight.values())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _consume(self, stopping: asyncio.Event) -> None:
        next_reclaim = 0.0
        while not stopping.is_set():
            try:
                entries: list[Entry] = []
                if time.monotonic() >= next_reclaim:
                    entries = await self.store.reclaim(
                        self.stream, self.group, self.consumer, self.settings.claim_idle_ms, self.wanted()
                    )
                    next_reclaim = time.monotonic() + self.settings.claim_idle_ms / 2000
                    if entries:
                        self.metrics.reclaimed.labels(self.stream_name).inc(len(entries))
                        logger.info(
                            "reclaimed stream=%s count=%d",
                            self.stream_name,
                            len(entries),
                            extra={"messages": _keys(entries)},
                        )
                if not entries:
                    entries = await self.store.read(
                        self.stream, self.group, self.consumer, self.wanted(), READ_BLOCK_MS
                    )
                if entries:
                    await self.take(entries)
            except (RedisError, OSError) as error:  # Redis restarting or unreachable: what we hold stays pending
                logger.warning("redis unavailable stream=%s error=%r; retrying in 1 s", self.stream_name, error)
                await asyncio.sleep(1)
                with contextlib.suppress(RedisError, OSError):  # a restarted Redis may have lost the group
                    await self.store.setup()

    async def give_up(self, entry: Entry, key: str, case: ReviewCase) -> None:
        """Move an entry to the dead-letter stream and put it before a human."""
        if await self.store.dead_letter(self.stream, self.group, entry, key, case):
            self.metrics.dead_letters.labels(self.stream_name).inc()


class Worker(Consumer):
    """Runs batches of inbound messages through the pipeline and commits their effects."""

    stream_name = "inbound"
    group = INBOUND_GROUP

    def __init__(
        self, store: RedisStore, pipeline: Pipeline, settings: Settings, metrics: Metrics, consumer: str
    ) -> None:
        super().__init__(store, store.keys.inbound, settings, metrics, consumer)
        self.pipeline = pipeline
        self.incidents = IncidentStore(store.redis, settings.redis_prefix)

    async def take(self, entries: list[Entry]) -> None:
        """Handle the batch as a task and read on while fewer than `worker_in_flight` batches are in hand: the
        next batches are embedded while earlier ones wait for the language model or commit."""
        fresh = self.fresh(entries)
        if fresh:
            self.start(fresh, self.handle(fresh))
        await self.room(self.settings.worker_in_flight * self.settings.worker_batch)

    async def handle(self, entries: list[Entry]) -> None:
        items = [(entry, InboundMessage.model_validate_json(entry.payload)) for entry in entries]
        items += await self._rest_of_bursts(items)
        batch = []
        for entry, message in items:
            if entry.deliveries > self.settings.max_deliveries:
                logger.error(
                    "message dead-lettered after %d deliveries",
                    entry.deliveries,
                    extra=message_fields(message) | {"deliveries": entry.deliveries},
                )
                await self.give_up(entry, message.key, escalation(message, "processing_failed", message.key))
            else:
                batch.append((entry, message))
        deadline = time.monotonic() + self.settings.claim_idle_ms / 1000
        next_touch = time.monotonic() + self.settings.claim_idle_ms / 3000
        while batch:
            ready, blocked = await self._in_turn(batch)
            if ready:
                await self._process_safely([batch[i] for i in ready])
                batch = [item for i, item in enumerate(batch) if i not in set(ready)]
                continue
            if await self._drop_leftovers(blocked):
                continue
            if time.monotonic() >= deadline:  # left pending, reclaimed once the earlier messages are done
                logger.info("waiting for earlier messages", extra={"messages": [m.key for _, m in batch]})
                return
            await asyncio.sleep(0.05)  # another worker is on an earlier message of these conversations
            if time.monotonic() >= next_touch:
                await self.store.touch(self.stream, self.group, self.consumer, [e.entry_id for e, _ in batch])
                next_touch = time.monotonic() + self.settings.claim_idle_ms / 3000

    async def _in_turn(
        self, batch: list[tuple[Entry, InboundMessage]]
    ) -> tuple[list[int], list[tuple[tuple[str, str], str]]]:
        """The batch's messages whose turn it is in their conversations (see coalesce.in_turn)."""
        conversations = sorted({(m.channel, m.conversation_id) for _, m in batch})
        queued = await self.store.queued_before(conversations, ORDER_DEPTH)
        messages = [message for _, message in batch]
        return in_turn(
            messages, dict(zip(conversations, queued, strict=True)), self.pipeline.policy.decision.coalesce_seconds
        )

    async def _drop_leftovers(self, blocked: list[tuple[tuple[str, str], str]]) -> bool:
        """Clear heads of conversations' order that are already finished; True if any was."""
        dropped = [
            await self.store.drop_if_finished(channel, conversation, key) for (channel, conversation), key in blocked
        ]
        return any(dropped)

    async def _process_safely(self, batch: list[tuple[Entry, InboundMessage]]) -> None:
        """Process a batch; if it fails, its messages one by one (a conversation stops at its first failure)."""
        try:
            await self._process(batch)
        except RedisError:  # not the messages' fault: the consume loop waits for Redis
            raise
        except Exception:  # one bad message must not hold back its batch: retry them one by one
            logger.exception(
                "batch failed, retrying messages one at a time size=%d",
                len(batch),
                extra={"messages": [message.key for _, message in batch]},
            )
            failed: set[tuple[str, str]] = set()
            for item in batch:
                conversation = (item[1].channel, item[1].conversation_id)
                if conversation in failed:  # its later messages wait for the failed one
                    continue
                try:
                    await self._process([item])
                except RedisError:
                    raise
                except Exception:  # left pending: reclaimed later, dead-lettered after max_deliveries
                    failed.add(conversation)
                    logger.exception("message failed", extra=message_fields(item[1]))

    async def _rest_of_bursts(self, items: list[tuple[Entry, InboundMessage]]) -> list[tuple[Entry, InboundMessage]]:
        """Wait out the coalescing window of the youngest message in hand, then take what came meanwhile,
        so a burst of messages is answered once (only fresh messages wait: a backlog goes straight on)."""
        window = self.pipeline.policy.decision.coalesce_seconds
        if not window or not items:
            return []
        wait = max(m.received_at for _, m in items) + timedelta(seconds=window) - datetime.now(UTC)
        if wait.total_seconds() <= 0:
            return []
        await asyncio.sleep(wait.total_seconds())
        more = await self.store.read(self.stream, self.group, self.consumer, self.settings.worker_batch, None)
        return [(entry, InboundMessage.model_validate_json(entry.payload)) for entry in more]

    async def _process(self, batch: list[tuple[Entry, InboundMessage]]) -> None:
        groups = bursts([message for _, message in batch], self.pipeline.policy.decision.coalesce_seconds)
        leads = [(batch[group[-1]][0], joined([batch[i][1] for i in group])) for group in groups]
        contexts = await self.store.conversations([(message.channel, message.conversation_id) for _, message in leads])
        backlog = await self.store.backlog()
        incidents = await self.incidents.active()  # read once a batch: decide() stays pure
        drafted = asyncio.Event()
        heartbeat = asyncio.create_task(self._keep_claimed([entry.entry_id for entry, _ in batch], drafted))
        try:
            outcomes = await self.pipeline.run(
                [(message, context) for (_, message), context in zip(leads, contexts, strict=True)],
                backlog=backlog,
                incidents=incidents,
            )
        finally:  # told to stop, not cancelled: a cancel landing inside the Redis client's call can be lost,
            drafted.set()  # and a heartbeat that outlives its batch hangs the worker while hiding it from reclaim
            await asyncio.gather(heartbeat, return_exceptions=True)
        started = time.perf_counter()
        # Before the answers: a crash in between costs a burst's texts, not a second reply. Each list is written
        # in one transaction (concurrent steps share it: see RedisStore._finish).
        merged = [(batch[i], batch[group[-1]][1]) for group in groups for i in group[:-1]]
        firsts = await asyncio.gather(*(self.store.coalesced(entry.entry_id, m, into) for (entry, m), into in merged))
        for ((_, message), into), first in zip(merged, firsts, strict=True):
            if first:
                self.metrics.coalesced.inc()
                logger.info("message coalesced", extra=message_fields(message) | {"into_message_id": into.id})
        finished = [
            (entry, outcome, *effects(outcome, datetime.now(UTC)))
            for (entry, _), outcome in zip(leads, outcomes, strict=True)
        ]
        firsts = await asyncio.gather(
            *(self.store.commit(entry.entry_id, outcome, reply, case) for entry, outcome, reply, case in finished)
        )
        fresh = []  # counted for the incident brake once, not again when a reclaimed message is found done
        for (_, outcome, reply, case), first in zip(finished, firsts, strict=True):
            if first:
                fresh.append(outcome.classification)
            logger.info("committed", extra=message_fields(outcome.message) | verdict(outcome, reply, case))
        self.metrics.stage_duration.labels("commit").observe(time.perf_counter() - started)
        await watch(self.incidents, fresh, self.pipeline.policy, self.metrics, datetime.now(UTC))

    async def _keep_claimed(self, entry_ids: list[str], drafted: asyncio.Event) -> None:
        """While a slow batch is drafted, keep other workers from taking it over as if this one had died."""
        while True:
            with contextlib.suppress(TimeoutError):  # no news within the period: touch the entries
                await asyncio.wait_for(drafted.wait(), self.settings.claim_idle_ms / 3000)
                return
            await self.store.touch(self.stream, self.group, self.consumer, entry_ids)


class Sender(Consumer):
    """Delivers outbox replies with retries and backoff, paced per surface; a reply that can't be delivered
    becomes a review case. Each send is recorded before (begin_send) and after (delivered): a reply whose
    sender died in between may already be on the platform, so it goes to a person rather than out twice."""

    stream_name = "outbox"
    group = OUTBOX_GROUP

    def __init__(
        self, store: RedisStore, channels: dict[str, Channel], settings: Settings, metrics: Metrics, consumer: str
    ) -> None:
        super().__init__(store, store.keys.outbox, settings, metrics, consumer)
        self.routes = by_surface(channels)

    async def handle(self, entries: list[Entry]) -> None:
        await asyncio.gather(*(self.deliver(entry) for entry in entries))

    async def take(self, entries: list[Entry]) -> None:
        """Start each entry's delivery and go back to reading: a reply waiting out a platform's Retry-After
        must not hold back the replies read after it (other conversations, other platforms)."""
        for entry in self.fresh(entries):
            self.start([entry], self.deliver(entry))
        await self.room(self.settings.send_in_flight)

    def wanted(self) -> int:
        """A batch, or what is left of `send_in_flight` (room() has made sure something is; never 0, which
        XREADGROUP would read as no limit at all)."""
        return max(1, min(self.settings.worker_batch, self.settings.send_in_flight - len(self.in_flight)))

    async def deliver(self, entry: Entry) -> None:
        reply = Reply.model_validate_json(entry.payload)
        with log_context(**message_fields(reply.message), reply_id=reply.reply_id, origin=reply.origin):
            await self._deliver(entry, reply)

    async def _deliver(self, entry: Entry, reply: Reply) -> None:
        surface = reply.message.channel
        error = await self._attempts(entry, reply)
        if reply.origin == "handover":  # the case is closed either way; the platform's inbox may not know
            if error is not None:
                logger.error("handover not passed on", extra={"error": str(error)})
            await self.store.ack(self.stream, self.group, entry.entry_id)
            return
        if error is None:
            if await self.store.delivered(entry.entry_id, reply):
                self.metrics.replies_sent.labels(surface).inc()
                if reply.origin == "holding":
                    self.metrics.holding_replies.labels(surface).inc()
                elapsed = (datetime.now(UTC) - reply.message.received_at).total_seconds()
                self.metrics.first_response.labels(surface, reply.origin).observe(max(0.0, elapsed))
                logger.info("reply delivered")
            return
        if reply.origin == "holding":  # its message already waits for a reviewer, who will answer it anyway
            logger.warning("holding reply not delivered", extra={"error": str(error)})
            await self.store.ack(self.stream, self.group, entry.entry_id)
            return
        logger.error("reply not delivered, sent to review", extra={"reason": error.reason, "error": str(error)})
        draft = Draft(text=reply.text, answerable=True, drafter=reply.origin)
        case = escalation(reply.message, error.reason, f"delivery:{reply.reply_id}", draft)
        await self.give_up(entry, f"reply:{reply.reply_id}", case)

    async def _attempts(self, entry: Entry, reply: Reply) -> ChannelError | None:
        """Try to deliver; None on success, else the last error once retries are spent or pointless."""
        channel = self.routes.get(reply.message.channel)
        if channel is None:
            return ChannelError(f"channel {reply.message.channel!r} is not configured", retryable=False)
        last_error: ChannelError | None = None
        delay = 0.0
        for attempt in range(self.settings.send_attempts):
            if attempt:
                await self._wait(entry, delay)
            try:
                await self._act(entry, channel, reply)
                return None
            except ChannelError as error:
                last_error = error
                self.metrics.replies_failed.labels(channel.name, "retryable" if error.retryable else "permanent").inc()
                failure = {"attempt": attempt + 1, "retryable": error.retryable, "error": str(error)}
                logger.warning("delivery failed", extra=failure)
                if not error.retryable:
                    break
                backoff = self.settings.send_backoff_s * 2**attempt * random.uniform(0.8, 1.2)
                delay = max(backoff, error.retry_after or 0.0)
        return last_error

    async def _act(self, entry: Entry, channel: Channel, reply: Reply) -> None:
        """One attempt: pass a handover on, or send the reply in its surface's turn, recorded before and after."""
        if reply.origin == "handover":
            await channel.hand_over(reply.message)
            return
        rate = self.settings.send_rate.get(reply.message.channel)
        if rate is not None:
            await self._wait(entry, await self.store.pace(reply.message.channel, rate))
        begun = await self.store.begin_send(reply.reply_id, self.consumer)
        if begun is Begun.DELIVERED:  # before a crash lost its ack: delivered() only acks it now
            return
        if begun is Begun.IN_DOUBT and not channel.resend_safe:
            raise ChannelError(
                "an earlier attempt stopped mid-send: the platform may already show this reply; check before sending",
                retryable=False,
                reason="delivery_in_doubt",
            )
        try:
            platform_id = await channel.send(reply)
        except ChannelError:
            await self.store.send_failed(reply.reply_id)
            raise
        logger.info("platform accepted reply", extra={"platform_id": platform_id})

    async def _wait(self, entry: Entry, seconds: float) -> None:
        """Sleep, keeping the entry claimed so no other sender takes it over as if this one had died."""
        while seconds > 0:
            step = min(seconds, self.settings.claim_idle_ms / 3000)
            await asyncio.sleep(step)
            seconds -= step
            await self.store.touch(self.stream, self.group, self.consumer, [entry.entry_id])
