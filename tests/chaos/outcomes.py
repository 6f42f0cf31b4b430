"""What every chaos test checks at the end: each message finished, with exactly one reply or one case."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Iterable

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bot.models import MessageState, Status
from bot.store import OUTBOX_GROUP, RedisStore
from tests.fakes import Receiver
from tests.service import Service

FINAL = {Status.SENT, Status.IN_REVIEW}


async def states_of(store: RedisStore, ids: list[str]) -> dict[str, MessageState | None]:
    raw = await store.redis.mget([store.keys.state("generic", mid) for mid in ids]) if ids else []
    return {mid: MessageState.model_validate_json(r) if r else None for mid, r in zip(ids, raw, strict=True)}


async def wait_finished(store: RedisStore, ids: list[str], timeout: float) -> dict[str, MessageState]:
    """Wait until every message is sent or in review and the outbox has nothing pending."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    states: dict[str, MessageState | None] = {}
    while loop.time() < deadline:
        states = await states_of(store, ids)
        finished = all(s is not None and s.status in FINAL for s in states.values())
        if finished and await store.pending_count(store.keys.outbox, OUTBOX_GROUP) == 0:
            return {mid: s for mid, s in states.items() if s is not None}
        await asyncio.sleep(0.25)
    unfinished = {mid: s.status if s else None for mid, s in states.items() if s is None or s.status not in FINAL}
    raise AssertionError(f"{len(unfinished)} messages never finished, e.g. {list(unfinished.items())[:10]}")


async def assert_exactly_once(store: RedisStore, receiver: Receiver, ids: Iterable[str]) -> tuple[int, int]:
    """Every message has one answer (a reply, "r_...") or one review case; none has two replies. A reply whose
    sender died between the platform's answer and its record is in doubt: the generic channel sends it again
    with the same reply_id, which its receiver dedups on (README), so a repeat of one reply_id is one reply;
    other channels give it to a person (delivery_in_doubt), and then the message may have both. Returns
    (replied, in review)."""
    await asyncio.sleep(2)  # room for a late duplicate to show up
    wanted = set(ids)
    distinct = {(r["in_reply_to"], r["reply_id"]) for r in receiver.replies}
    answers = collections.Counter(mid for mid, reply_id in distinct if reply_id.startswith("r_"))
    holding = collections.Counter(mid for mid, reply_id in distinct if reply_id.startswith("h_"))
    assert set(answers) | set(holding) <= wanted, "a reply to a message nobody sent"
    twice = {mid: n for mid, n in (answers + holding).items() if answers[mid] > 1 or holding[mid] > 1}
    assert not twice, f"replied more than once: {twice}"
    cases: dict[str, list[tuple[str, ...]]] = collections.defaultdict(list)
    for case in await store.pending_cases(limit=100_000):
        cases[case.message.id].append(case.decision.reasons)
    assert set(cases) <= wanted
    lost = wanted - set(answers) - set(cases)
    assert not lost, f"{len(lost)} messages with neither a reply nor a case, e.g. {sorted(lost)[:10]}"
    for mid, reasons in cases.items():
        assert len(reasons) == 1 or all("delivery_in_doubt" in r for r in reasons[1:]), (mid, reasons)
        if mid in answers:  # answered and in review: only when a delivery was in doubt
            assert any("delivery_in_doubt" in r for r in reasons), (mid, reasons)
    return len(answers), len(cases)


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples in a /metrics page whose labels include `labels`."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


async def scrape(service: Service) -> str:
    async with aiohttp.ClientSession() as session, session.get(service.url + "/metrics") as response:
        return await response.text()
