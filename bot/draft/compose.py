"""One message's draft: retrieve the facts, ask the model (or the offline drafter), fit it to the channel.

The pipeline and `python -m bot draft` both draft through a Composer, so what a brand tries on the command
line is what its customers get.
"""

from __future__ import annotations

import logging
from functools import partial

import numpy as np

from bot.channels.base import reply_length
from bot.draft import Drafter
from bot.draft.fit import drop_repeated_personal_data, fit_length, limit_emoji
from bot.draft.grounding import ungrounded_numbers
from bot.draft.knowledge import KnowledgeIndex, Passage
from bot.draft.prompts import Persona
from bot.errors import DraftError
from bot.metrics import Metrics
from bot.models import Classification, Context, Draft, InboundMessage

logger = logging.getLogger(__name__)


def finish(draft: Draft, message: InboundMessage, persona: Persona, facts: list[Passage]) -> Draft:
    """The draft fitted to the message's channel and checked. What it fixed is in the note; what it could not
    make safe is in `checks`, which the policy turns into reasons for a person to look."""
    style = persona.style(message.channel)
    text = limit_emoji(draft.text, style.emoji)
    text, removed = drop_repeated_personal_data(text, message.text)
    assert style.max_chars is not None  # Persona.style() always makes it concrete
    text, cut = fit_length(text, style.max_chars, persona.sign_off, partial(reply_length, message.channel))
    notes = [draft.note] + ([f"removed repeated personal data ({', '.join(sorted(set(removed)))})"] if removed else [])
    loose = ungrounded_numbers(text, [p.text for p in facts] + [persona.sign_off, message.text, message.author.handle])
    banned = [phrase for phrase in persona.banned_phrases if phrase.lower() in text.lower()]
    found = {
        "cut_mid_sentence": (cut, "cut mid-sentence to fit the channel"),
        "ungrounded_number": (bool(loose), f"states numbers its sources don't: {', '.join(loose)}"),
        "banned_phrase": (bool(banned), f"uses banned phrases: {', '.join(banned)}"),
        "emptied": (bool(draft.text.strip()) and not text.removesuffix(persona.sign_off).strip(), "nothing left"),
    }
    checks = tuple(name for name, (applies, _) in found.items() if applies)
    notes += [found[name][1] for name in checks]
    return draft.model_copy(update={"text": text, "checks": checks, "note": "; ".join(n for n in notes if n)})


class Composer:
    """Retrieval, then the model with the offline drafter behind it, then finish()."""

    def __init__(
        self,
        knowledge: KnowledgeIndex,
        drafter: Drafter | None,
        offline: Drafter,
        persona: Persona,
        metrics: Metrics,
        passages: int,
    ) -> None:
        self.knowledge = knowledge
        self.drafter = drafter
        self.offline = offline
        self.persona = persona
        self.metrics = metrics
        self.passages = passages

    async def draft(self, message: InboundMessage, cls: Classification, context: Context, vector: np.ndarray) -> Draft:
        passages = self.knowledge.search(vector, cls.intent, self.passages)
        draft = await self._write(message, cls, context, passages)
        facts = passages + [self.knowledge.by_id[s] for s in draft.sources if s in self.knowledge.by_id]
        draft = finish(draft, message, self.persona, facts)
        draft = draft.model_copy(update={"retrieved": tuple(p.id for p in passages)})
        self.metrics.drafts.labels(draft.drafter, "yes" if draft.answerable and not draft.checks else "no").inc()
        return draft

    async def _write(
        self, message: InboundMessage, cls: Classification, context: Context, passages: list[Passage]
    ) -> Draft:
        if self.drafter is None:
            return await self.offline.draft(message, cls, context, passages)
        try:
            return await self.drafter.draft(message, cls, context, passages)
        except DraftError as error:  # the model is down, slow or refusing: the offline drafter still answers
            logger.warning("drafting fell back to offline", extra={"error": str(error)})
            draft = await self.offline.draft(message, cls, context, passages)
            return draft.model_copy(update={"note": f"fallback: {error}"})
