"""One batch of messages through classify -> draft -> decide, as plain async calls without Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import numpy as np

from bot.classify import Classifier
from bot.draft.compose import Composer
from bot.draft.holding import Holding
from bot.logs import log_context, message_fields
from bot.metrics import Metrics
from bot.models import Classification, Context, InboundMessage, Outcome, Priority
from bot.policy.decide import attachment_only, decide, ignore_reasons
from bot.policy.hours import after_working_time
from bot.policy.incident import Incident, applicable, holding_due
from bot.policy.schema import BrandPolicy


class Pipeline:
    """Classifies a batch with one encoder call, then drafts and decides each message concurrently."""

    def __init__(
        self, classifier: Classifier, composer: Composer, policy: BrandPolicy, holding: Holding, metrics: Metrics
    ) -> None:
        self.classifier = classifier
        self.composer = composer
        self.policy = policy
        self.holding = holding
        self.metrics = metrics

    async def run(
        self,
        batch: Sequence[tuple[InboundMessage, Context]],
        now: datetime | None = None,
        backlog: int = 0,
        incidents: Mapping[str, Incident] | None = None,
    ) -> list[Outcome]:
        """The batch's outcomes; `now` is the decision time (a replay sets it, the service reads the clock),
        `backlog` the cases waiting for reviewers (it pushes back what a holding reply promises), `incidents`
        the topics the incident brake holds (none in a replay)."""
        incidents = incidents or {}
        now = now or datetime.now(UTC)
        policy = self.policy  # one policy for the whole batch, even if a reload swaps it meanwhile
        started = time.perf_counter()
        classifications, vectors = await self.classifier.classify_many([message.text for message, _ in batch])
        self.metrics.stage_duration.labels("classify").observe(time.perf_counter() - started)
        for cls in classifications:
            self.metrics.classifications.labels(cls.intent).inc()
            if cls.sentiment is not None:
                self.metrics.sentiments.labels(cls.sentiment).inc()
            self.metrics.languages.labels(cls.language).inc()
            for flag in cls.risk_flags:
                self.metrics.risk_flags.labels(flag.name).inc()
        return list(
            await asyncio.gather(
                *(
                    self._finish(message, context, cls, vector, policy, now, backlog, incidents)
                    for (message, context), cls, vector in zip(batch, classifications, vectors, strict=True)
                )
            )
        )

    async def _finish(
        self,
        message: InboundMessage,
        context: Context,
        cls: Classification,
        vector: np.ndarray,
        policy: BrandPolicy,
        now: datetime,
        backlog: int,
        incidents: Mapping[str, Incident],
    ) -> Outcome:
        with log_context(**message_fields(message)):  # this task's lines, the drafter's too
            draft = None
            if not ignore_reasons(message, cls, policy):  # no need to draft what nobody will answer
                started = time.perf_counter()
                draft = await self.composer.draft(message, cls, context, vector)
                self.metrics.stage_duration.labels("draft").observe(time.perf_counter() - started)
            decision = decide(message, cls, draft, context, policy, now, incidents)
            self.metrics.decisions.labels(decision.action.value, cls.intent).inc()
            for reason in decision.reasons:
                self.metrics.decision_rules.labels(decision.action.value, reason.split(":", 1)[0]).inc()
            holding = None
            incident = holding_due(applicable(incidents, cls.intent), context)
            if decision.holding and incident is not None:  # the incident's agreed words, in working hours too
                holding = incident.holding or policy.decision.incident.holding
            elif decision.holding and attachment_only(message) and policy.decision.attachments_only == "reply":
                holding = self.holding.attachment(message)
            elif decision.holding and decision.deadline is not None:  # reviewers are off: say when a person answers
                hours = policy.decision.review_hours
                queue = after_working_time(hours, now, backlog * policy.decision.review_minutes_per_case)
                answer_by = max(decision.deadline, queue)
                holding = self.holding.text(message, decision.priority, answer_by, now, hours.timezone)
                if decision.priority is Priority.URGENT:
                    self.metrics.urgent_off_hours.inc()
            return Outcome(message=message, classification=cls, draft=draft, decision=decision, holding_reply=holding)
