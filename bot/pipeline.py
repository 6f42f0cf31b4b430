"""One batch of messages through classify -> draft -> decide, as plain async calls without Redis."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

import numpy as np

from bot.classify import Classifier
from bot.draft.compose import Composer
from bot.metrics import Metrics
from bot.models import Classification, Context, InboundMessage, Outcome
from bot.policy.decide import decide, ignore_reasons
from bot.policy.schema import BrandPolicy

logger = logging.getLogger(__name__)


class Pipeline:
    """Classifies a batch with one encoder call, then drafts and decides each message concurrently."""

    def __init__(self, classifier: Classifier, composer: Composer, policy: BrandPolicy, metrics: Metrics) -> None:
        self.classifier = classifier
        self.composer = composer
        self.policy = policy
        self.metrics = metrics

    async def run(self, batch: Sequence[tuple[InboundMessage, Context]]) -> list[Outcome]:
        started = time.perf_counter()
        classifications, vectors = await self.classifier.classify_many([message.text for message, _ in batch])
        self.metrics.stage_duration.labels("classify").observe(time.perf_counter() - started)
        for cls in classifications:
            self.metrics.classifications.labels(cls.intent).inc()
            if cls.sentiment is not None:
                self.metrics.sentiments.labels(cls.sentiment).inc()
            for flag in cls.risk_flags:
                self.metrics.risk_flags.labels(flag.name).inc()
        return list(
            await asyncio.gather(
                *(
                    self._finish(message, context, cls, vector)
                    for (message, context), cls, vector in zip(batch, classifications, vectors, strict=True)
                )
            )
        )

    async def _finish(
        self, message: InboundMessage, context: Context, cls: Classification, vector: np.ndarray
    ) -> Outcome:
        draft = None
        if not ignore_reasons(message, cls, self.policy):  # no need to draft what nobody will answer
            started = time.perf_counter()
            draft = await self.composer.draft(message, cls, context, vector)
            self.metrics.stage_duration.labels("draft").observe(time.perf_counter() - started)
        decision = decide(message, cls, draft, self.policy)
        self.metrics.decisions.labels(decision.action.value).inc()
        logger.info(
            "decided message=%s intent=%s confidence=%.2f sentiment=%s action=%s reasons=%s",
            message.key,
            cls.intent,
            cls.confidence,
            cls.sentiment,
            decision.action.value,
            ",".join(decision.reasons),
        )
        return Outcome(message=message, classification=cls, draft=draft, decision=decision)
