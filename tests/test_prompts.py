"""A brand's prompt files are checked at start: each mistake stops it, naming the file and the reason."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from bot.__main__ import main
from bot.app import load_brand
from bot.classify.encoder import TransformersEncoder
from bot.config import Settings
from bot.draft.knowledge import KnowledgeIndex
from bot.errors import ConfigError
from tests.conftest import ROOT

EDITS = [  # file, text replaced, replacement, what the error must say
    ("system.j2", "{% for rule in persona.voice %}", "{% for rule in %}", r"system\.j2:\d+: template error"),
    ("user.j2", "{{ message.text }}", "{{ message.txt }}", r"user\.j2: template failed to render: .*txt"),
    ("system.j2", "{{ persona.name }}", "{{ persona.nickname }}", r"system\.j2: template failed to render"),
    ("persona.yaml", "sign_off:", "signoff:", r"persona\.yaml:\d+: sign_off: Field required"),
    ("persona.yaml", "  x_dm:", "  tiktok:", r"persona\.yaml:28: channels: .*unknown channels \['tiktok'\]"),
    (
        "persona.yaml",
        "x_mention: {emoji",
        "x_mention: {max_chars: 500, emoji",
        r"above the platform's limit .*x_mention",
    ),
    ("persona.yaml", "name: Northwind Team", "name: [Northwind", r"persona\.yaml:\d+: invalid YAML"),
]


@pytest.fixture
def brand_copy(tmp_path: Path, make_settings: Callable[..., Settings]) -> tuple[Path, Settings]:
    prompts = tmp_path / "prompts"
    shutil.copytree(ROOT / "prompts", prompts)
    return prompts, make_settings(prompts_dir=prompts)


@pytest.mark.parametrize(("file", "old", "new", "error"), EDITS, ids=[f"{e[0]}:{e[2]}" for e in EDITS])
def test_a_broken_prompt_file_stops_the_start(
    brand_copy: tuple[Path, Settings], file: str, old: str, new: str, error: str
) -> None:
    prompts, settings = brand_copy
    text = (prompts / file).read_text()
    assert old in text
    (prompts / file).write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError, match=error) as raised:
        load_brand(settings)
    assert str(prompts / file) in str(raised.value)


def test_guidance_for_an_intent_that_does_not_exist_stops_the_start(brand_copy: tuple[Path, Settings]) -> None:
    prompts, settings = brand_copy
    (prompts / "guidance" / "refunds_galore.md").write_text("Be generous.")
    with pytest.raises(ConfigError, match=r"guidance: no intent named \['refunds_galore'\]"):
        load_brand(settings)


def test_the_draft_command_names_the_broken_file(
    brand_copy: tuple[Path, Settings], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts, _ = brand_copy
    (prompts / "user.j2").write_text("{{ message.text }")
    monkeypatch.setenv("BOT_PROMPTS_DIR", str(prompts))
    assert main(["draft", "hello"]) == 2
    assert f"error: {prompts / 'user.j2'}:1: template error" in capsys.readouterr().err


def test_knowledge_vectors_are_embedded_once_and_cached(
    settings: Settings, encoder: TransformersEncoder, tmp_path: Path
) -> None:
    passages = load_brand(settings).passages
    first = KnowledgeIndex.build(passages, encoder, {}, tmp_path)
    [cached] = list(tmp_path.glob("knowledge-*.npy"))
    np.save(cached, first.vectors * 2)  # a marker: a second build must read the file, not embed again
    assert np.allclose(KnowledgeIndex.build(passages, encoder, {}, tmp_path).vectors, first.vectors * 2)
    edited = [passages[0].__class__(passages[0].id, passages[0].title, "Changed text."), *passages[1:]]
    KnowledgeIndex.build(edited, encoder, {}, tmp_path)
    assert len(list(tmp_path.glob("knowledge-*.npy"))) == 2  # new texts, new key
