"""The offline drafter: persona-voiced answer templates per intent (prompts/answers/), grounded in the
knowledge base. It never invents: a template's numbers are checked against its sources at start, and an
intent without a template gets answerable=False, which sends the message to a human."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jinja2
from pydantic import BaseModel, ConfigDict, Field

from bot.draft.grounding import ungrounded_numbers
from bot.draft.knowledge import Passage
from bot.draft.prompts import Persona, compile_template, display_name, environment, render
from bot.errors import ConfigError
from bot.models import Classification, Context, Draft, InboundMessage
from bot.policy.load import read_yaml, validate


class AnswerFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sources: list[str] = Field(default_factory=list, description="Knowledge passages the text states facts from.")
    text: str = Field(min_length=1)


@dataclass(frozen=True)
class Answer:
    template: jinja2.Template
    sources: tuple[Passage, ...]


def load_answers(
    directory: Path, intents: set[str], passages: dict[str, Passage], persona: Persona
) -> dict[str, Answer]:
    """Every prompts/answers/<intent>.yaml, checked: known intent, known passages, every number grounded."""
    env = environment(directory)
    answers = {}
    for path in sorted(directory.glob("*.yaml")):
        if path.stem not in intents:
            raise ConfigError(f"{path}: no intent named {path.stem!r} in policies/intents.yaml")
        spec = validate(path, AnswerFile, read_yaml(path))
        missing = [source for source in spec.sources if source not in passages]
        if missing:
            raise ConfigError(f"{path}: sources not in the knowledge base: {missing}")
        answer = Answer(compile_template(env, spec.text, str(path)), tuple(passages[source] for source in spec.sources))
        sample = render(answer.template, path, name="@customer", sign_off=persona.sign_off)
        loose = ungrounded_numbers(sample, [p.text for p in answer.sources] + [persona.sign_off])
        if loose:
            raise ConfigError(f"{path}: numbers not found in its sources {spec.sources}: {loose}")
        answers[path.stem] = answer
    return answers


class OfflineDrafter:
    """Answers the knowledge-base intents from templates; needs no model endpoint."""

    name = "offline"

    def __init__(self, answers: dict[str, Answer], persona: Persona) -> None:
        self._answers = answers
        self._persona = persona

    async def draft(
        self, message: InboundMessage, cls: Classification, context: Context, passages: list[Passage]
    ) -> Draft:
        answer = self._answers.get(cls.intent)
        if answer is None:
            return Draft(text="", answerable=False, drafter=self.name, note=f"no answer template for {cls.intent}")
        name = display_name(message, self._persona.style(message.channel))
        text = answer.template.render(name=name, sign_off=self._persona.sign_off).strip()
        return Draft(text=text, answerable=True, sources=tuple(p.id for p in answer.sources), drafter=self.name)
