"""Bursts: a customer who writes "hi" / "my order" / "it's late" in three messages gets one answer.

Pure: which messages of a batch belong together. The worker waits out the window before it reads a batch
(see Worker.handle), answers each group once with its texts joined, and marks the others as coalesced.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.models import InboundMessage


def bursts(messages: Sequence[InboundMessage], window_s: float) -> list[list[int]]:
    """Indices of the messages grouped into bursts, each in time order: one author in one conversation, each
    message within `window_s` of the one before. Every other message is a burst of its own."""
    order = sorted(range(len(messages)), key=lambda i: messages[i].created_at)
    groups: list[list[int]] = []
    last: dict[tuple[str, str, str], list[int]] = {}
    for i in order:
        m = messages[i]
        key = (m.channel, m.conversation_id, m.author.id)
        group = last.get(key)
        if group is not None and (m.created_at - messages[group[-1]].created_at).total_seconds() <= window_s:
            group.append(i)
        else:
            group = [i]
            groups.append(group)
            last[key] = group
    return groups


def joined(messages: Sequence[InboundMessage]) -> InboundMessage:
    """One message standing for a burst: the last one's ids and times, every text in order."""
    if len(messages) == 1:
        return messages[0]
    return messages[-1].model_copy(update={"text": "\n".join(m.text for m in messages)})
