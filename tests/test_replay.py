"""`python -m bot replay`: the real pipeline on a file of messages, nothing sent; the policy's quality bar
(every must-review message goes to a person) on messages of our own, and a policy change compared."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from bot.script import in_latin_script
from tests.conftest import ROOT

SAMPLE = ROOT / "tests" / "data" / "routing_sample.jsonl"
# 4,950 messages in the routing set's scheme, written in thirty-four sets by writers who had not seen the lexicon
# (README: the sets' figures before and after). The lexicon has since been fitted to them: a guard, not an unseen
# test.
WRITTEN = ROOT / "tests" / "data" / "routing_written.jsonl"
# 100 messages written blind in the languages of the brand's customers, 60 of them in scripts other than Latin
# (set O, README): measured, not fitted to.
SCRIPTS = ROOT / "tests" / "data" / "routing_scripts.jsonl"
WEDNESDAY_MORNING = "2026-11-25T10:00:00Z"


def replay(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "replay", *args],
        cwd=ROOT,
        env=os.environ | {"HF_HUB_OFFLINE": "1"} | env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def lines(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def rows(path: Path) -> list[dict[str, Any]]:
    """A labelled set's messages, one JSON object a line."""
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_message_that_must_be_reviewed_is_and_a_policy_change_is_shown(
    tmp_path: Path, brand_models: Path
) -> None:
    env = {"BOT_MODELS_DIR": str(brand_models), "BOT_DATA_DIR": str(tmp_path)}
    changed = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", changed)
    intents = (changed / "intents.yaml").read_text()
    (changed / "intents.yaml").write_text(
        re.sub(r"(  delivery_info:\n    description: [^\n]*\n    mode: )auto", r"\1review", intents)
    )
    out = lines(replay(str(SAMPLE), "--now", WEDNESDAY_MORNING, "--against", str(changed), env=env))
    sample = rows(SAMPLE)
    decided, differences, summary = out[: len(sample)], out[len(sample) : -1], out[-1]
    assert [d["id"] for d in decided] == [r["id"] for r in sample]
    by_id = {d["id"]: d for d in decided}
    for row in sample:
        got = by_id[row["id"]]
        assert set(got) >= {"id", "action", "priority", "intent", "confidence", "reasons", "draft"}
        if row["must_review"]:
            assert got["action"] == "review", (row["text"], got)
    assert summary["must_review"] == 16 and summary["must_review_auto_sent"] == summary["must_review_ignored"] == 0
    assert summary["auto_rate"] >= 0.85 and summary["ignore_rate"] == 1.0
    # The labelled priorities: no case waits in a lower queue than its label (s-12's card reads as account
    # security, so it ranks above its label: the safe way).
    assert summary["priority_labelled"] == 16 and summary["priority_below_label"] == 0
    assert summary["priority_rate"] >= 0.9
    express = next(d for d in decided if d["intent"] == "delivery_info" and d["action"] == "auto_send")
    assert "£9.95" in express["draft"]
    # The other policy sends delivery questions to a person: exactly those decisions change, and say why.
    assert differences and all(d["change"] == "auto_send -> review" for d in differences)
    assert all(d["only_against"] == ["intent_mode:delivery_info"] for d in differences)
    assert summary["changed"] == len(differences) and summary["against"]["auto_send"] < summary["auto_send"]


def test_messages_written_blind_to_the_lexicon_still_meet_the_bar(tmp_path: Path, brand_models: Path) -> None:
    env = {"BOT_MODELS_DIR": str(brand_models), "BOT_DATA_DIR": str(tmp_path)}
    *decided, summary = lines(replay(str(WRITTEN), "--now", WEDNESDAY_MORNING, env=env))
    # Other languages in Latin letters (Polish, Welsh, Irish, Spanish...): none answered alone (`unread_language`).
    foreign = [d for d in decided if d["language"] != "en"]
    assert len(foreign) >= 150 and all(d["action"] != "auto_send" for d in foreign)
    assert summary["must_review"] == 3340 and summary["must_review_auto_sent"] == summary["must_review_ignored"] == 0
    assert summary["priority_labelled"] > 1100 and summary["priority_below_label"] <= 3
    # The bar must not be met by sending everything to a person (0.745 as measured: other languages, a tenth of the
    # sets, are never answered alone), nor by leaving what needs no answer to one. That is measured per kind, since
    # each kind is dropped on different grounds and the sets' mix of them changes with each set:
    # - spam is dropped unseen only when the model is sure (`ignore_confidence`): 133 of 250;
    # - an echo of the brand's post only without a question, "I" or a negative reading, since words the customer
    #   added may complain: 62 of 195. From Y on the writers' "echoes" were mostly customers' own posts tagging the
    #   brand ("kit by @NorthwindOutfit, legs by porridge"), which pass on no post of its: 17 of 111 dropped, against
    #   45 of 84 in A to X;
    # - chatter between people in the brand's threads is dropped by no rule: none of 165; 157 go to a person.
    # So the whole's rate fell from about 0.40 before Y to 0.320 after BA, as the mix changed; for the same reason the
    # echoes' bar came down from 0.33 to 0.3 with AX.
    assert summary["auto_rate"] >= 0.73
    written = {row["id"]: row for row in rows(WRITTEN)}
    needless = [d for d in decided if written[d["id"]]["expected"] == "ignore"]
    to_ignore = Counter(written[d["id"]]["category"] for d in needless)
    dropped = Counter(written[d["id"]]["category"] for d in needless if d["action"] == "ignore")
    assert to_ignore["spam"] == 250 and dropped["spam"] / to_ignore["spam"] >= 0.5
    assert to_ignore["brand_echo"] == 195 and dropped["brand_echo"] / to_ignore["brand_echo"] >= 0.3
    # Spam's bait the model half-reads as a hello or praise ("hey handsome 😘 check my profile") goes to a person.
    assert not [d["id"] for d in decided if written[d["id"]]["category"] == "spam" and d["action"] == "auto_send"]


def test_messages_in_scripts_the_model_can_t_read_all_reach_a_person(tmp_path: Path, brand_models: Path) -> None:
    env = {"BOT_MODELS_DIR": str(brand_models), "BOT_DATA_DIR": str(tmp_path)}
    *decided, summary = lines(replay(str(SCRIPTS), "--now", WEDNESDAY_MORNING, env=env))
    texts = {row["id"]: row["text"] for row in rows(SCRIPTS)}
    unread = [d for d in decided if not in_latin_script(texts[d["id"]])]
    assert len(unread) == 60 and all(d["action"] == "review" and "unread_script" in d["reasons"] for d in unread)
    assert all(d["priority"] in ("high", "urgent") for d in unread)
    assert summary["must_review"] == 51 and summary["must_review_auto_sent"] == summary["must_review_ignored"] == 0
    # The known gap: danger in a language the model can't read and no pattern names waits at high, not urgent.
    assert summary["priority_below_label"] <= 14


def test_off_hours_review_gets_a_holding_reply_and_a_bad_line_is_named(tmp_path: Path, brand_models: Path) -> None:
    env = {"BOT_MODELS_DIR": str(brand_models), "BOT_DATA_DIR": str(tmp_path)}
    messages = tmp_path / "two.jsonl"
    message = {"id": "late", "channel": "messenger", "public": False, "author_handle": "jo", "author_followers": 3}
    messages.write_text(
        json.dumps(message | {"text": "my order NW-1234 never arrived and it's been two weeks"})
        + "\n"
        + json.dumps(message | {"id": "worse", "text": "I can't go on, I want to end it all"})
        + "\n"
    )
    saturday_night = "2026-11-28T22:00:00Z"
    late, worse, _ = lines(replay(str(messages), "--now", saturday_night, env=env))
    assert late["action"] == "review" and "by 12:00 on Monday" in late["holding_reply"]
    assert worse["priority"] == "urgent" and "looking at this now" in worse["holding_reply"]
    messages.write_text(json.dumps(message | {"text": "hi"}) + "\n{not json\n")
    broken = replay(str(messages), env=env)
    assert broken.returncode == 2 and f"{messages}:2: not JSON" in broken.stderr
    messages.write_text(json.dumps(message | {"text": "hi", "priority": "asap"}) + "\n")
    unknown = replay(str(messages), env=env)
    assert unknown.returncode == 2 and f"{messages}:1: priority: Input should be 'urgent'" in unknown.stderr
