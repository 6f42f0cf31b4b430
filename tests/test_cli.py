"""The command line as a user meets it: help, and clear messages for bad settings and bad files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, free_port


def run(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        timeout=280,  # training on a busy 2-core machine; pytest stops the test at 300
        env={**clean, **(env or {})},
        cwd=cwd,
    )


def test_help_lists_the_commands() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("serve", "web", "worker"):
        assert command in result.stdout


def test_each_bad_setting_is_named() -> None:
    result = run(
        "serve",
        env={
            "BOT_CLAIM_IDLE_MS": "soon",
            "BOT_LLM_BASE_URL": "ftp://x",
            "BOT_REVIEW_TOKENS": "short",
            "BOT_LOG_LEVEL": "LOUD",
        },
    )
    assert result.returncode == 2
    for name in ("BOT_CLAIM_IDLE_MS", "BOT_LLM_BASE_URL", "BOT_REVIEW_TOKENS", "BOT_LOG_LEVEL"):
        assert name in result.stderr
    assert "short" not in result.stderr.replace("shorter", "")  # a secret's value is never echoed


def test_split_processes_need_a_shared_redis() -> None:
    result = run("worker")
    assert result.returncode == 2 and "BOT_REDIS_URL" in result.stderr


def test_a_broken_policy_file_is_named_with_its_line(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    (tmp_path / "policies" / "decision.yaml").write_text("confidence_threshold: 0.5\nown_accounts: [unclosed\n")
    result = run(
        "serve", env={"BOT_POLICIES_DIR": str(tmp_path / "policies"), "BOT_PROMPTS_DIR": str(ROOT / "prompts")}
    )
    assert result.returncode == 2
    assert "decision.yaml:3: invalid YAML" in result.stderr and "Traceback" not in result.stderr
    (tmp_path / "policies" / "decision.yaml").write_text("confidence_threshold: 1.5\nmood: sunny\n")
    result = run(
        "serve", env={"BOT_POLICIES_DIR": str(tmp_path / "policies"), "BOT_PROMPTS_DIR": str(ROOT / "prompts")}
    )
    assert "decision.yaml:1: confidence_threshold: Input should be less than or equal to 1" in result.stderr
    assert "decision.yaml:2: mood: Extra inputs are not permitted" in result.stderr


def test_check_reads_every_brand_file_and_names_the_line_of_a_problem(tmp_path: Path) -> None:
    result = run("check")
    assert result.returncode == 0, result.stderr
    assert "policies: valid: 29 intents (12 auto, 1 ignore, 16 review), 16 risk flags" in result.stdout
    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    risk = tmp_path / "policies" / "risk.yaml"
    lines = risk.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if "suicid(e|al)" in line)
    lines[at] = lines[at].replace("suicid(e|al)", r"suicid(e|al)\s(\w+\s?)+")
    risk.write_text("\n".join(lines) + "\n")
    result = run("check", env={"BOT_POLICIES_DIR": str(tmp_path / "policies")})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{risk}:{at + 1}: flags.crisis.patterns." in result.stderr
    assert "could stall the service on one crafted message" in result.stderr


def test_unreachable_redis_is_said_plainly() -> None:
    result = run("web", "--port", str(free_port()), env={"BOT_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    assert result.returncode == 1
    assert "cannot use Redis (BOT_REDIS_URL)" in result.stderr and "Traceback" not in result.stderr


def test_train_caches_the_intent_model(tmp_path: Path) -> None:
    result = run("train", env={"BOT_DATA_DIR": str(tmp_path), "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr
    assert "intent model ready: 29 intents" in result.stdout
    assert len(list((tmp_path / "models").glob("intent-head-*.npz"))) == 1
    assert len(list((tmp_path / "models").glob("intent-top2-*.pt"))) == 1  # the tuned layers (the default)
    assert len(list((tmp_path / "models").glob("encoder-*-top2-*.onnx"))) == 1  # a message alone runs there
    assert "knowledge base ready: " in result.stdout
    assert len(list((tmp_path / "models").glob("knowledge-*.npy"))) == 1
    again = run("train", env={"BOT_DATA_DIR": str(tmp_path), "HF_HUB_OFFLINE": "1"})
    assert "loaded from cache" in again.stderr
