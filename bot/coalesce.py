"""Bursts and turns. A customer who writes "hi" / "my order" / "it's late" in three messages gets one answer,
and a conversation's messages are handled one burst at a time, in the order they came, by whichever worker.

Pure: which messages of a batch belong together. The worker waits out the window before it reads a batch
(see Worker.handle), answers each group once with its texts joined, and marks the others as coalesced.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

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


def in_turn(
    messages: Sequence[InboundMessage], queued: Mapping[tuple[str, str], Sequence[str]], window_s: float
) -> tuple[list[int], list[tuple[tuple[str, str], str]]]:
    """Which messages may be handled now, so that no two of one conversation are handled at once or out of
    order, whichever worker holds them: per conversation, the messages at the head of its order (`queued`: its
    unfinished message keys, oldest first) that are in hand, up to the end of the head's burst. Messages not
    in the order (queued before it existed) count as after it, by time. Also returns, per conversation held
    up, the key at its head that is not in hand (another worker's, or a leftover to check)."""
    by_conversation: dict[tuple[str, str], list[int]] = {}
    for i, message in enumerate(messages):
        by_conversation.setdefault((message.channel, message.conversation_id), []).append(i)
    ready: list[int] = []
    blocked: list[tuple[tuple[str, str], str]] = []
    for conversation, indices in by_conversation.items():
        listed = list(queued.get(conversation, ()))
        in_hand = {messages[i].key: i for i in indices}
        extra = sorted((i for i in indices if messages[i].key not in listed), key=lambda i: messages[i].created_at)
        sequence = [in_hand.get(key) for key in listed] + extra
        prefix = [i for i in itertools.takewhile(lambda i: i is not None, sequence) if i is not None]
        if not prefix:
            blocked.append((conversation, listed[0]))
            continue
        first = next(group for group in bursts([messages[i] for i in prefix], window_s) if 0 in group)
        ready += prefix[: next((n for n in range(len(prefix)) if n not in first), len(prefix))]
    return ready, blocked
