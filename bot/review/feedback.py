"""`python -m bot export-feedback`: reviewers' decisions and edits as JSON Lines.

Each row is a replay row (`id, channel, public, author_handle, author_followers, text, conversation_id`) plus what
the reviewer decided (`Feedback`), so the file is training material and, through `python -m bot replay`, a
regression test: `disagreement` names every case where the bot would now act against the reviewer.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import sys
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from bot.classify.evaluate import JSON_LINES
from bot.config import Settings
from bot.errors import ConfigError
from bot.models import Action, ReviewCase
from bot.review.connect import service_redis
from bot.review.learning import Verdict, intent_of, verdict
from bot.store import RedisStore


class Feedback(BaseModel):
    """What a reviewer decided about one case, next to what the bot had proposed."""

    model_config = ConfigDict(frozen=True, extra="ignore")  # a row also carries the message's fields

    case_id: str = Field(min_length=1)
    intent: str | None = None
    verdict: Verdict
    draft: str | None = None  # the bot's draft
    final: str | None = None  # the text the reviewer sent (approved or edited)
    reason: str | None = None  # why the reviewer rejected or handed over
    reviewer: str | None = None
    resolved_at: datetime.datetime | None = None
    reasons: tuple[str, ...] = ()  # the rules that fired in the bot's decision
    shadow: Action | None = None  # in shadow mode: what the bot alone would have done

    @model_validator(mode="after")
    def _edited_has_final(self) -> Feedback:
        if self.verdict is Verdict.EDITED and self.final is None:
            raise PydanticCustomError("final_missing", "verdict edited needs final, the text the reviewer sent")
        return self


def feedback_row(case: ReviewCase) -> dict[str, Any]:
    """A resolved case as one flat JSON-able row: the message as replay reads it, then the `Feedback` fields."""
    found = verdict(case)
    if found is None:
        raise ValueError(f"case {case.case_id} is still pending")
    sent = found in (Verdict.APPROVED, Verdict.EDITED)
    message, decision = case.message, case.decision
    feedback = Feedback(
        case_id=case.case_id,
        intent=intent_of(case),
        verdict=found,
        draft=case.draft.text if case.draft and case.draft.text else None,
        final=case.resolution if sent else None,
        reason=None if sent else case.resolution or None,
        reviewer=case.resolved_by,
        resolved_at=case.resolved_at,
        reasons=decision.reasons,
        shadow=decision.shadow,
    )
    return {
        "id": message.id,
        "channel": message.channel,
        "public": message.public,
        "author_handle": message.author.handle,
        "author_followers": message.author.followers,
        "text": message.text,
        "conversation_id": message.conversation_id,
        **feedback.model_dump(mode="json"),
    }


_UNDONE = {Verdict.REJECTED: "rejected", Verdict.HANDED_OVER: "handed over"}


def disagreement(feedback: Feedback, action: Action, draft: str | None) -> str | None:
    """Why the bot, now deciding `action` with `draft`, would act against the reviewer; None if it would not.

    Only what reaches the customer counts: a message now held for review can't repeat a mistake.
    """
    sends = action is Action.AUTO_SEND
    if feedback.verdict in _UNDONE and sends:
        return f"the reviewer {_UNDONE[feedback.verdict]} this; the bot would now send its draft unreviewed"
    rewritten = (draft or "").strip() != (feedback.final or "").strip()
    if feedback.verdict is Verdict.EDITED and sends and rewritten:
        return "the reviewer rewrote the draft; the bot would now send a different text unreviewed"
    if feedback.verdict is Verdict.APPROVED and action is Action.IGNORE:
        return "the reviewer sent the bot's draft; the bot would now ignore the message"
    return None


def export_feedback(settings: Settings, args: argparse.Namespace) -> int:
    """Every resolved case (resolved at or after `--since`) as a row, to `--out` or standard output."""
    since = None
    if args.since:
        try:
            since = datetime.datetime.fromisoformat(args.since)
        except ValueError as error:
            raise ConfigError(f"--since takes an ISO 8601 time, not {args.since!r}") from error
        since = since if since.tzinfo else since.replace(tzinfo=datetime.UTC)
    if args.out is not None and args.out.suffix not in JSON_LINES:
        raise ConfigError(f"{args.out}: export-feedback writes JSON Lines ({', '.join(JSON_LINES)}) for replay")
    return asyncio.run(_export(settings, args, since))


async def _export(settings: Settings, args: argparse.Namespace, since: datetime.datetime | None) -> int:
    async with service_redis(settings) as redis:
        cases = await RedisStore(redis, settings.redis_prefix, ttl_s=settings.dedup_ttl_s).resolved_cases()
    if since is not None:  # cases resolved before resolved_at was recorded have no time: they are older
        cases = [case for case in cases if case.resolved_at is not None and case.resolved_at >= since]
    lines = [json.dumps(feedback_row(case), ensure_ascii=False) + "\n" for case in cases]
    if args.out is None:
        sys.stdout.writelines(lines)
    else:
        args.out.write_text("".join(lines), encoding="utf-8")
    print(f"wrote {len(lines)} feedback rows to {args.out or 'stdout'}", file=sys.stderr)
    return 0
