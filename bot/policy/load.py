"""Reading policies/*.yaml into a BrandPolicy; every error names the file, the place in it and the reason."""

from __future__ import annotations

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
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc']) or '(top)'}: {e['msg']}" for e in error.errors()
        )
        raise ConfigError(f"{path}: {problems}") from error


def load_policy(directory: Path) -> BrandPolicy:
    """policies/intents.yaml, risk.yaml, decision.yaml and sentiment.yaml as one validated BrandPolicy."""
    parts = {
        name: validate(directory / f"{name}.yaml", model, read_yaml(directory / f"{name}.yaml"))
        for name, model in FILES.items()
    }
    return BrandPolicy.model_validate(parts)
