"""Reviewers' feedback: a resolved case as an exported row, the rules that say when the bot would now go against
a reviewer, `export-feedback` on a real Redis, and `replay` holding the current pipeline to that file."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot import replay
from bot.config import Settings
from bot.errors import ConfigError
from bot.models import (
    Action,
    Author,
    CaseState,
    Classification,
    Decision,
    Draft,
    InboundMessage,
    Outcome,
    Reply,
    ReviewCase,
)
from bot.review.feedback import Feedback, disagreement, feedback_row
from bot.review.learning import Verdict
from bot.store import INBOUND_GROUP, RedisStore
from tests.conftest import ROOT

SAMPLE = ROOT / "tests" / "data" / "routing_sample.jsonl"
WEDNESDAY_MORNING = "2026-11-25T10:00:00Z"
NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
DRAFT = "Express delivery is £9.95."


def sample(row_id: str) -> InboundMessage:
    """A message of the routing sample, as a channel would have parsed it."""
    for line in SAMPLE.read_text().splitlines():
        row = json.loads(line)
        if row["id"] == row_id:
            return InboundMessage(
                channel=row["channel"],
                id=row["id"],
                conversation_id="conv-" + row["id"],
                text=row["text"],
                author=Author(
                    id="u-" + row["author_handle"], handle=row["author_handle"], followers=row["author_followers"]
                ),
                created_at=NOON,
                public=row["public"],
                received_at=NOON,
            )
    raise LookupError(row_id)


def review_case(
    msg: InboundMessage,
    *,
    intent: str = "delivery_info",
    draft: str | None = DRAFT,
    shadow: Action | None = None,
    case_id: str = "c-1",
) -> ReviewCase:
    return ReviewCase(
        case_id=case_id,
        message=msg,
        classification=Classification(intent=intent, confidence=0.91),
        draft=Draft(text=draft, answerable=True, drafter="offline") if draft is not None else None,
        decision=Decision(action=Action.REVIEW, reasons=(f"intent_mode:{intent}",), shadow=shadow),
        created_at=NOON,
    )


def resolved(case: ReviewCase, state: CaseState, resolution: str | None) -> ReviewCase:
    return case.model_copy(
        update={"state": state, "resolved_by": "rita", "resolved_at": NOON, "resolution": resolution}
    )


# -- the row -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "resolution", "verdict", "final", "reason"),
    [
        (CaseState.APPROVED, DRAFT, "approved", DRAFT, None),
        (CaseState.APPROVED, "Express is £9.95, next day.", "edited", "Express is £9.95, next day.", None),
        (CaseState.REJECTED, "quotes the old price", "rejected", None, "quotes the old price"),
        (CaseState.REJECTED, None, "rejected", None, None),
        (CaseState.HANDED_OVER, "VIP customer", "handed_over", None, "VIP customer"),
    ],
)
def test_a_resolved_case_becomes_one_flat_row_replay_reads(
    tmp_path: Path, state: CaseState, resolution: str | None, verdict: str, final: str | None, reason: str | None
) -> None:
    msg = sample("s-17")
    row = feedback_row(resolved(review_case(msg, shadow=Action.AUTO_SEND), state, resolution))
    assert row == {
        "id": "s-17",
        "channel": "messenger",
        "public": False,
        "author_handle": "lena_b",
        "author_followers": 22,
        "text": "how much does express delivery cost?",
        "conversation_id": "conv-s-17",
        "case_id": "c-1",
        "intent": "delivery_info",
        "verdict": verdict,
        "draft": DRAFT,
        "final": final,
        "reason": reason,
        "reviewer": "rita",
        "resolved_at": "2026-11-25T12:00:00Z",
        "reasons": ["intent_mode:delivery_info"],
        "shadow": "auto_send",
    }
    # The row is a replay row: replay rebuilds the message and reads the reviewer's decision back.
    path = tmp_path / "feedback.jsonl"
    path.write_text(json.dumps(row) + "\n")
    [case] = replay.read_cases(path, NOON)
    assert case.message.model_dump(exclude={"author"}) == msg.model_dump(exclude={"author"})
    assert case.feedback is not None and case.feedback.verdict == verdict and case.feedback.final == final


def test_a_case_without_a_draft_that_a_reviewer_answered_was_edited_and_a_pending_one_is_no_row() -> None:
    case = review_case(sample("s-17"), draft=None)
    row = feedback_row(resolved(case, CaseState.APPROVED, "Hi Lena, it's £9.95."))
    assert (row["verdict"], row["draft"], row["final"], row["shadow"]) == ("edited", None, "Hi Lena, it's £9.95.", None)
    with pytest.raises(ValueError, match="pending"):
        feedback_row(case)


# -- the rules -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("verdict", "action", "draft", "why"),
    [
        (Verdict.REJECTED, Action.AUTO_SEND, DRAFT, "rejected this"),
        (Verdict.REJECTED, Action.REVIEW, DRAFT, None),
        (Verdict.REJECTED, Action.IGNORE, None, None),
        (Verdict.HANDED_OVER, Action.AUTO_SEND, DRAFT, "handed over this"),
        (Verdict.HANDED_OVER, Action.REVIEW, DRAFT, None),
        (Verdict.EDITED, Action.AUTO_SEND, DRAFT, "rewrote the draft"),
        (Verdict.EDITED, Action.AUTO_SEND, "  Express is £9.95, next day.\n", None),  # the fix is what it sends
        (Verdict.EDITED, Action.REVIEW, DRAFT, None),
        (Verdict.EDITED, Action.IGNORE, None, None),
        (Verdict.APPROVED, Action.IGNORE, None, "would now ignore"),
        (Verdict.APPROVED, Action.AUTO_SEND, "Something else entirely.", None),
        (Verdict.APPROVED, Action.REVIEW, DRAFT, None),
    ],
)
def test_the_bot_goes_against_a_reviewer_only_where_it_would_reach_the_customer_differently(
    verdict: Verdict, action: Action, draft: str | None, why: str | None
) -> None:
    final = "Express is £9.95, next day." if verdict in (Verdict.EDITED, Verdict.APPROVED) else None
    found = disagreement(Feedback(case_id="c-1", verdict=verdict, final=final), action, draft)
    assert found == why if why is None else found is not None and why in found


def test_replay_lists_the_rows_the_bot_now_gets_wrong_and_counts_them_only_for_feedback_files() -> None:
    cases = [
        replay.Case(sample("s-17"), None, False, Feedback(case_id="c-a", verdict=Verdict.REJECTED)),
        replay.Case(sample("s-18"), None, False, Feedback(case_id="c-b", verdict=Verdict.HANDED_OVER)),
        replay.Case(sample("s-19"), "auto", False),
    ]
    outcomes = [
        Outcome(
            message=case.message,
            classification=Classification(intent="delivery_info", confidence=0.9),
            draft=Draft(text=DRAFT, answerable=True, drafter="offline"),
            decision=Decision(action=action, reasons=(f"because:{case.message.id}",)),
        )
        for case, action in zip(cases, (Action.AUTO_SEND, Action.REVIEW, Action.AUTO_SEND), strict=True)
    ]
    [found] = replay.against_reviewers(cases, outcomes)
    assert found == {
        "id": "s-17",
        "case_id": "c-a",
        "verdict": "rejected",
        "now": "auto_send",
        "reasons": ["because:s-17"],
        "why": "the reviewer rejected this; the bot would now send its draft unreviewed",
    }
    figures = replay.summary(cases, outcomes)
    assert (figures["feedback"], figures["feedback_differences"], figures["auto_rate"]) == (2, 1, 1.0)
    assert "feedback" not in replay.summary(cases[2:], outcomes[2:])


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({"case_id": "c-1", "verdict": "maybe"}, ":2: verdict: Input should be 'approved', 'edited'"),
        ({"verdict": "rejected"}, ":2: case_id: Field required"),
        ({"case_id": "c-1", "verdict": "edited"}, ":2: verdict edited needs final"),
        ({"case_id": "c-1", "verdict": "rejected", "shadow": "post"}, ":2: shadow: Input should be"),
        ({"case_id": "c-1", "verdict": "approved", "final": DRAFT, "public": "sometimes"}, ":2: public: Input should"),
    ],
)
def test_a_bad_feedback_row_is_named_with_its_line(tmp_path: Path, extra: dict[str, object], error: str) -> None:
    row = {"id": "m", "channel": "messenger", "public": False, "author_handle": "jo", "text": "hi"}
    path = tmp_path / "feedback.jsonl"
    path.write_text(json.dumps(row) + "\n" + json.dumps(row | extra) + "\n")
    with pytest.raises(ConfigError) as raised:
        replay.read_cases(path, NOON)
    assert str(raised.value).startswith(f"{path}{error}")


# -- the commands, end to end --------------------------------------------------------------------------------


def bot(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=ROOT,
        env=clean | {"HF_HUB_OFFLINE": "1"} | env,
        capture_output=True,
        text=True,
        timeout=600,
    )


async def seed(
    store: RedisStore, msg: InboundMessage, intent: str, state: CaseState, *, draft: str, sent: str | None = None
) -> ReviewCase:
    """A message the worker sent to review, then a reviewer's decision on it, as the review API records them."""
    await store.enqueue([msg])
    [entry] = await store.read(store.keys.inbound, INBOUND_GROUP, "w", 1, 100)
    case = review_case(msg, intent=intent, draft=draft, case_id="case-" + msg.id)
    classification = Classification(intent=intent, confidence=0.91)
    outcome = Outcome(message=msg, classification=classification, draft=case.draft, decision=case.decision)
    assert await store.commit(entry.entry_id, outcome, None, case)
    reply = Reply(reply_id="r-" + msg.id, message=msg, text=sent, origin="reviewer") if sent is not None else None
    reason = None if sent is not None else f"not this one ({state.value})"
    return await store.resolve(case.case_id, "rita", state, reply, reason)


async def test_export_feedback_writes_every_decision_and_replay_names_each_the_bot_would_now_undo(
    settings: Settings, redis: Redis, tmp_path: Path, brand_models: Path
) -> None:
    store = RedisStore(redis, settings.redis_prefix, ttl_s=600)
    await store.setup()
    express = "Express delivery is £9.95 and arrives the next working day."
    # Rejected, but the bot would now send its draft: a regression.
    await seed(store, sample("s-17"), "delivery_info", CaseState.REJECTED, draft=express)
    # Rewritten, and the bot would now send its own text instead.
    await seed(
        store, sample("s-18"), "returns_info", CaseState.APPROVED, draft="Our returns.", sent="Returns are free."
    )
    # Answered, but spam the bot would now ignore.
    await seed(store, sample("s-28"), "greeting", CaseState.APPROVED, draft="Hello!", sent="Hello!")
    # Handed over, and still held for a person: as it should be.
    await seed(store, sample("s-01"), "complaint", CaseState.HANDED_OVER, draft="We're here for you.")
    before = datetime.now(UTC)
    # Approved: the bot now sends a reply of its own unreviewed, which is what the reviewer did.
    await seed(store, sample("s-19"), "store_hours", CaseState.APPROVED, draft="Sun 11-17.", sent="Sun 11-17.")

    env = {"BOT_REDIS_URL": settings.redis_url or "", "BOT_REDIS_PREFIX": settings.redis_prefix}
    env |= {"BOT_DATA_DIR": str(tmp_path), "BOT_MODELS_DIR": str(brand_models)}
    out = tmp_path / "feedback.jsonl"
    exported = await asyncio.to_thread(bot, "export-feedback", "--out", str(out), env=env)
    assert exported.returncode == 0, exported.stderr
    assert f"wrote 5 feedback rows to {out}" in exported.stderr and exported.stdout == ""
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["id"], r["verdict"]) for r in rows] == [
        ("s-17", "rejected"),
        ("s-18", "edited"),
        ("s-28", "approved"),
        ("s-01", "handed_over"),
        ("s-19", "approved"),
    ]
    returns = rows[1]
    assert (returns["draft"], returns["final"], returns["reason"]) == ("Our returns.", "Returns are free.", None)
    assert (returns["intent"], returns["reasons"]) == ("returns_info", ["intent_mode:returns_info"])
    assert rows[0]["reason"] == "not this one (rejected)" and rows[0]["final"] is None
    assert all(r["reviewer"] == "rita" and r["case_id"] == "case-" + r["id"] for r in rows)

    since = await asyncio.to_thread(bot, "export-feedback", "--since", before.isoformat(), env=env)
    assert since.returncode == 0, since.stderr
    assert [json.loads(line)["id"] for line in since.stdout.splitlines()] == ["s-19"]
    assert "wrote 1 feedback rows to stdout" in since.stderr

    replayed = await asyncio.to_thread(bot, "replay", str(out), "--now", WEDNESDAY_MORNING, env=env)
    assert replayed.returncode == 0, replayed.stderr
    lines = [json.loads(line) for line in replayed.stdout.splitlines()]
    decided, against, summary = lines[: len(rows)], lines[len(rows) : -1], lines[-1]
    actions = {d["id"]: d["action"] for d in decided}
    assert actions == {
        "s-17": "auto_send",
        "s-18": "auto_send",
        "s-28": "ignore",
        "s-01": "review",
        "s-19": "auto_send",
    }
    by_id = {d["id"]: d for d in against}
    assert set(by_id) == {"s-17", "s-18", "s-28"}
    assert by_id["s-17"]["verdict"] == "rejected" and by_id["s-17"]["now"] == "auto_send"
    assert by_id["s-18"]["why"].startswith("the reviewer rewrote the draft")
    assert by_id["s-28"]["now"] == "ignore" and by_id["s-28"]["reasons"]
    assert (summary["messages"], summary["feedback"], summary["feedback_differences"]) == (5, 5, 3)
