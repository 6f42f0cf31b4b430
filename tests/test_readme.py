"""README.md stays true: its configuration table lists exactly the settings that exist."""

from __future__ import annotations

import re

from bot.config import Settings
from tests.conftest import ROOT


def test_configuration_table_matches_settings() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `BOT_([A-Z0-9_]+)`", table, re.MULTILINE))
    assert documented == {name.upper() for name in Settings.model_fields}


def test_the_commands_readme_gives_are_the_ones_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install -c constraints.txt -e ".[test]" && HF_HUB_OFFLINE=1 python -m pytest' in readme
    assert "HF_HUB_OFFLINE=1 python -m pytest" in ci and '-c constraints.txt -e ".[test]"' in ci


def test_every_metric_is_documented() -> None:
    from bot.metrics import create_metrics

    section = (ROOT / "README.md").read_text().split("## Metrics", 1)[1].split("\n## ", 1)[0]
    names = {metric.name.removeprefix("autoresponder_") for metric in create_metrics().registry.collect()}
    counters = {
        m.name.removeprefix("autoresponder_") for m in create_metrics().registry.collect() if m.type == "counter"
    }
    documented = set(re.findall(r"`([a-z_]+_(?:total|seconds|state|cases|messages|active))(?:\{[^}]*\})?`", section))
    assert {name + "_total" if name in counters else name for name in names} == documented
