"""Reading policies/*.yaml into a BrandPolicy; every error names the file, the place in it and the reason."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from bot.errors import ConfigError
from bot.policy.schema import BrandPolicy, DecisionPolicy, IntentCatalog, RiskLexicon, SentimentExamples

M = TypeVar("M", bound=BaseModel)

FILES: dict[str, type[BaseModel]] = {
    "intents": IntentCatalog,
    "risk": RiskLexicon,
    "decision": DecisionPolicy,
    "sentiment": SentimentExamples,
}


def read_yaml(path: Path) -> object:
    """Parsed YAML, or a ConfigError with the file and line of the syntax error."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ConfigError(f"{path}: file not found") from error
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{where}: invalid YAML: {getattr(error, 'problem', error)}") from error


def validate(path: Path, model: type[M], data: object) -> M:
    """`data`, read from `path`, as a `model`; or a ConfigError naming each problem's line and place."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{path}{line(path, e['loc'])}: {'.'.join(map(str, e['loc'])) or '(top)'}: "
            f"{e['msg'].removeprefix('Value error, ')}"
            for e in error.errors()
        )
        raise ConfigError(problems) from error


def line(path: Path, place: Sequence[int | str]) -> str:
    """The line of `path` that holds `place` (its key, or its item in a list; for a place that is missing, the
    nearest one that holds it) as ":N", so an author goes straight to it; "" where the file can't be read again."""
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return ""
    if node is None:
        return ""
    mark = node.start_mark
    for part in place:
        if isinstance(node, yaml.MappingNode):
            found = [(key.start_mark, value) for key, value in node.value if key.value == str(part)]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            found = [(node.value[part].start_mark, node.value[part])]
        else:
            found = []
        if not found:
            break
        mark, node = found[0]
    return f":{mark.line + 1}"


def load_policy(directory: Path) -> BrandPolicy:
    """policies/intents.yaml, risk.yaml, decision.yaml and sentiment.yaml as one validated BrandPolicy."""
    parts = {
        name: validate(directory / f"{name}.yaml", model, read_yaml(directory / f"{name}.yaml"))
        for name, model in FILES.items()
    }
    policy = BrandPolicy.model_validate(parts)
    cross_check(directory, policy)
    return policy


def cross_check(directory: Path, policy: BrandPolicy) -> None:
    """Every name one file borrows from another must exist there, so a typo fails the start, not a message."""
    intents = set(policy.intents.intents)
    references = [  # (file, path inside it, names used, names defined, where they are defined)
        ("risk.yaml", f"flags.{flag}.intents", spec.intents, intents, "intents.yaml")
        for flag, spec in policy.risk.flags.items()
    ]
    references += [
        ("decision.yaml", "no_holding_reply", policy.decision.no_holding_reply, set(policy.risk.flags), "risk.yaml"),
        ("decision.yaml", "intent_confidence", list(policy.decision.intent_confidence), intents, "intents.yaml"),
    ]
    for file, path, used, defined, source in references:
        missing = sorted(set(used) - defined)
        if missing:
            where = line(directory / file, path.split("."))
            raise ConfigError(f"{directory / file}{where}: {path}: {', '.join(missing)} not defined in {source}")


def write_unknown_threshold(directory: Path, threshold: float, provenance: str) -> Path:
    """Set `unknown_threshold` in intents.yaml in place, keeping the file's comments and layout, with a comment
    saying where the figure came from; the result is validated like any edit."""
    path = directory / "intents.yaml"
    text = path.read_text(encoding="utf-8")
    line = f"unknown_threshold: {threshold}  # {provenance}"
    if re.search(r"(?m)^unknown_threshold:.*$", text):
        text = re.sub(r"(?m)^unknown_threshold:.*$", line, text)
    else:
        text = re.sub(r"(?m)^intents:", f"{line}\n\nintents:", text, count=1)
    validate(path, IntentCatalog, yaml.safe_load(text))
    path.write_text(text, encoding="utf-8")
    return path
