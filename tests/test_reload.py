"""Policies reload while the service runs (a file change or SIGHUP); an invalid edit keeps the old policy.
And which messages form a burst (pure)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from datetime import timedelta
from pathlib import Path

import pytest

from bot.coalesce import bursts, joined
from bot.metrics import create_metrics
from bot.policy.reload import PolicyWatcher
from bot.policy.schema import BrandPolicy
from tests.conftest import message


async def until(condition: object, timeout: float = 10) -> None:
    async def poll() -> None:
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


async def test_a_valid_edit_applies_an_invalid_one_is_refused_and_sighup_reloads(
    tmp_path: Path, policies_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "policies"
    shutil.copytree(policies_dir, folder)
    applied: list[BrandPolicy] = []
    metrics = create_metrics()
    watcher = PolicyWatcher(folder, applied.append, metrics, interval=0.05)
    stopping = asyncio.Event()
    task = asyncio.create_task(watcher.run(stopping))
    decision = folder / "decision.yaml"
    original = decision.read_text()
    assert "confidence_threshold: 0.5\n" in original

    decision.write_text(original.replace("confidence_threshold: 0.5\n", "confidence_threshold: 0.75\n"))
    await until(lambda: applied)
    assert applied[-1].decision.confidence_threshold == 0.75

    decision.write_text(original.replace("confidence_threshold: 0.5\n", "confidence_threshold: 1.5\n"))
    rejected = metrics.policy_reloads.labels("rejected")
    await until(lambda: rejected._value.get() == 1)
    assert len(applied) == 1  # the running policy stays
    line = original.splitlines().index("confidence_threshold: 0.5") + 1
    assert f"{decision}:{line}: confidence_threshold: Input should be less than or equal to 1" in caplog.text

    decision.write_text(original)
    await until(lambda: len(applied) == 2)
    await asyncio.sleep(0.2)  # nothing changes now: no more reloads
    assert len(applied) == 2
    os.kill(os.getpid(), signal.SIGHUP)
    await until(lambda: len(applied) == 3)
    stopping.set()
    await asyncio.wait_for(task, 5)
    assert metrics.policy_reloads.labels("applied")._value.get() == 3


def test_bursts_group_one_author_in_one_conversation_within_the_window() -> None:
    first = message("hi", id="a")
    same = {"conversation_id": first.conversation_id}

    def later(text: str, seconds: float, **update: object) -> object:
        return first.model_copy(
            update={
                "id": text,
                "text": text,
                "created_at": first.created_at + timedelta(seconds=seconds),
                **same,
                **update,
            }
        )

    other_author = later("other", 1, author=first.author.model_copy(update={"id": "u2"}))
    messages = [later("third", 4), first, later("second", 2), later("much later", 20), other_author]
    groups = bursts(messages, 3)  # type: ignore[arg-type]
    assert [[messages[i].text for i in g] for g in groups] == [["hi", "second", "third"], ["other"], ["much later"]]
    assert joined([messages[1], messages[2], messages[0]]).text == "hi\nsecond\nthird"  # type: ignore[list-item]
    assert joined([first]) is first
