"""Drafting replies: the LLM drafter, the offline drafter, and what they share."""

from __future__ import annotations

from typing import Protocol

from bot.draft.knowledge import Passage
from bot.models import Classification, Context, Draft, InboundMessage


class Drafter(Protocol):
    """Proposes a reply; never sends, never decides."""

    name: str

    async def draft(
        self, message: InboundMessage, cls: Classification, context: Context, passages: list[Passage]
    ) -> Draft:
        """A draft, with answerable=False when it can't be grounded; raises DraftError when it can't run."""
        ...
