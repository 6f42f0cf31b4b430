"""`python -m bot replay`: messages through the real pipeline, nothing sent, one JSON line per message.

Ops test a policy change here before shipping it: `--against` runs the same messages under a second
policies folder and shows which decisions change and why. Rows labelled like the routing data set
(`expected`, `must_review`) also get the quality figures the product promises. Rows exported by
`python -m bot export-feedback` (they carry a `verdict`) are reviewers' decisions: replay names each one the
current policy and drafts would now go against, so a mistake once fixed stays fixed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from bot.app import Brand, build_composer, open_backend
from bot.classify import Classifier
from bot.classify.evaluate import JSON_LINES, rows
from bot.config import Settings
from bot.errors import ConfigError
from bot.metrics import create_metrics
from bot.models import Action, Author, Context, InboundMessage, Outcome, Priority
from bot.pipeline import Pipeline
from bot.review.feedback import Feedback, disagreement

BATCH = 32


class _Row(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    channel: str
    public: bool
    author_handle: str
    author_followers: int = 0
    text: str
    conversation_id: str | None = None
    expected: str | None = None
    must_review: bool = False
    priority: Priority | None = None


@dataclass(frozen=True)
class Case:
    message: InboundMessage
    expected: str | None
    must_review: bool
    feedback: Feedback | None = None  # a reviewer's decision on this message (an exported feedback row)
    priority: Priority | None = None  # the labelled priority, for a message that should be reviewed


def read_cases(path: Path, now: datetime) -> list[Case]:
    """The file's messages; a bad line is an error naming the file and the line."""
    if path.suffix not in JSON_LINES:
        raise ConfigError(f"{path}: replay reads JSON Lines ({', '.join(JSON_LINES)}), one message per line")
    cases = []
    try:
        with path.open(encoding="utf-8") as handle:
            for line, row in rows(path, handle, ("id", "text")):
                cases.append(_case(path, line, row, now))
    except FileNotFoundError as error:
        raise ConfigError(f"{path}: file not found") from error
    if not cases:
        raise ConfigError(f"{path}: no messages")
    return cases


def _case(path: Path, line: int, row: dict[str, object], now: datetime) -> Case:
    try:
        item = _Row.model_validate(row)
        feedback = Feedback.model_validate(row) if "verdict" in row else None
        message = InboundMessage(
            channel=item.channel,
            id=item.id,
            conversation_id=item.conversation_id or item.id,
            text=item.text,
            author=Author(id=item.author_handle, handle=item.author_handle, followers=item.author_followers),
            created_at=now,
            public=item.public,
            received_at=now,
        )
    except ValidationError as error:
        problem = error.errors()[0]
        field = ".".join(map(str, problem["loc"]))
        raise ConfigError(f"{path}:{line}: {field + ': ' if field else ''}{problem['msg']}") from error
    return Case(message, item.expected, item.must_review, feedback, item.priority)


async def run(
    settings: Settings, brand: Brand, classifier: Classifier, messages: Sequence[InboundMessage], now: datetime
) -> list[Outcome]:
    """The messages through the service's pipeline (the configured model, or offline), in batches, with
    nothing stored or sent."""
    metrics = create_metrics()
    backend = await open_backend(settings)
    try:
        composer = build_composer(settings, brand, classifier.encoder, backend, metrics)
        pipeline = Pipeline(classifier, composer, brand.policy, brand.holding, metrics)
        outcomes: list[Outcome] = []
        for start in range(0, len(messages), BATCH):
            outcomes += await pipeline.run([(m, Context()) for m in messages[start : start + BATCH]], now)
        return outcomes
    finally:
        if backend is not None:
            await backend.close()


def report(outcome: Outcome) -> dict[str, Any]:
    decision, cls, draft = outcome.decision, outcome.classification, outcome.draft
    return {
        "id": outcome.message.id,
        "action": decision.action.value,
        "priority": decision.priority.value,
        "intent": cls.intent,
        "confidence": round(cls.confidence, 3),
        "language": cls.language,
        "reasons": list(decision.reasons),
        "draft": draft.text if draft and draft.text else None,
        "holding_reply": outcome.holding_reply,
    }


def summary(cases: Sequence[Case], outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """Counts of actions and, where the rows carry labels, the figures the policy must meet."""
    actions = Counter(o.decision.action.value for o in outcomes)
    figures: dict[str, Any] = {"messages": len(outcomes), **{a: actions[a] for a in ("auto_send", "review", "ignore")}}
    must = [o.decision.action.value for c, o in zip(cases, outcomes, strict=True) if c.must_review]
    if must:
        figures |= {
            "must_review": len(must),
            "must_review_auto_sent": must.count("auto_send"),
            "must_review_ignored": must.count("ignore"),
        }
    for label, action in (("auto", "auto_send"), ("ignore", "ignore"), ("review", "review")):
        got = [o.decision.action.value for c, o in zip(cases, outcomes, strict=True) if c.expected == label]
        if got:
            figures[f"expected_{label}"] = len(got)
            figures[f"{label}_rate"] = round(got.count(action) / len(got), 4)
    # Where the queue puts a case: an urgent message filed as normal waits hours for its turn.
    ranked = [
        (c.priority, o.decision.priority)
        for c, o in zip(cases, outcomes, strict=True)
        if c.priority is not None and c.expected == "review" and o.decision.action is Action.REVIEW
    ]
    if ranked:
        figures |= {
            "priority_labelled": len(ranked),
            "priority_rate": round(sum(want == got for want, got in ranked) / len(ranked), 4),
            "priority_below_label": sum(got.rank > want.rank for want, got in ranked),
        }
    reviewed = sum(case.feedback is not None for case in cases)
    if reviewed:
        figures |= {"feedback": reviewed, "feedback_differences": len(against_reviewers(cases, outcomes))}
    return figures


def differences(cases: Sequence[Case], ours: Sequence[Outcome], theirs: Sequence[Outcome]) -> list[dict[str, Any]]:
    """The messages whose decision changes under the other policy, with both sets of reasons."""
    changed = []
    for case, a, b in zip(cases, ours, theirs, strict=True):
        if (a.decision.action, a.decision.priority) != (b.decision.action, b.decision.priority):
            changed.append(
                {
                    "id": case.message.id,
                    "change": f"{a.decision.action.value} -> {b.decision.action.value}",
                    "priority": f"{a.decision.priority.value} -> {b.decision.priority.value}",
                    "reasons": list(a.decision.reasons),
                    "reasons_against": list(b.decision.reasons),
                    "only_here": sorted(set(a.decision.reasons) - set(b.decision.reasons)),
                    "only_against": sorted(set(b.decision.reasons) - set(a.decision.reasons)),
                }
            )
    return changed


def against_reviewers(cases: Sequence[Case], outcomes: Sequence[Outcome]) -> list[dict[str, Any]]:
    """The feedback rows where the bot would now act against what the reviewer decided (see `disagreement`)."""
    found = []
    for case, outcome in zip(cases, outcomes, strict=True):
        if case.feedback is None:
            continue
        decision, draft = outcome.decision, outcome.draft
        why = disagreement(case.feedback, decision.action, draft.text if draft else None)
        if why is not None:
            found.append(
                {
                    "id": case.message.id,
                    "case_id": case.feedback.case_id,
                    "verdict": case.feedback.verdict.value,
                    "now": decision.action.value,
                    "reasons": list(decision.reasons),
                    "why": why,
                }
            )
    return found
