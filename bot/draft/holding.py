"""The holding reply: what a customer gets at once when their message needs a person who isn't at work.

It says when a person will answer (the decision's deadline, in the reviewers' time zone), or for an urgent
case that someone is on it now. Its templates (prompts/holding.yaml) are checked at start like the answers.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from bot.draft.grounding import ungrounded_numbers
from bot.draft.prompts import Persona, compile_template, display_name, environment, render
from bot.errors import ConfigError
from bot.models import InboundMessage, Priority
from bot.policy.load import read_yaml, validate


class HoldingFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    later: str = Field(min_length=1, description="Says when a person will reply: {{ when }}.")
    urgent: str = Field(min_length=1, description="Says someone is on it now.")
    attachment: str = Field(
        min_length=1, description="Thanks for a picture or file without words and asks what it is about."
    )


def when(deadline: datetime, now: datetime, zone: str) -> str:
    """ "by 14:00 today", "by 9:00 tomorrow", "by 9:00 on Monday", "by 9:00 on 28 December" in `zone`."""
    local, today = deadline.astimezone(ZoneInfo(zone)), now.astimezone(ZoneInfo(zone)).date()
    clock = f"{local.hour}:{local.minute:02d}"
    if local.date() == today:
        return f"by {clock} today"
    if local.date() == today + timedelta(days=1):
        return f"by {clock} tomorrow"
    if local.date() < today + timedelta(days=7):
        return f"by {clock} on {local:%A}"
    return f"by {clock} on {local.day} {local:%B}"


class Holding:
    def __init__(self, path: Path, persona: Persona) -> None:
        spec = validate(path, HoldingFile, read_yaml(path))
        env = environment(path.parent)
        self.later = compile_template(env, spec.later, str(path))
        self.urgent = compile_template(env, spec.urgent, str(path))
        self.attachment_template = compile_template(env, spec.attachment, str(path))
        self.persona = persona
        sample_when = "by 9:00 tomorrow"
        for template in (self.later, self.urgent, self.attachment_template):
            sample = render(template, path, name="@customer", when=sample_when, sign_off=persona.sign_off)
            if ungrounded_numbers(sample, [sample_when, persona.sign_off]):
                raise ConfigError(f"{path}: a holding reply states no facts, so no numbers of its own")

    def text(self, message: InboundMessage, priority: Priority, answer_by: datetime, now: datetime, zone: str) -> str:
        name = display_name(message, self.persona.style(message.channel))
        if priority is Priority.URGENT:
            return self.urgent.render(name=name, sign_off=self.persona.sign_off).strip()
        return self.later.render(name=name, when=when(answer_by, now, zone), sign_off=self.persona.sign_off).strip()

    def attachment(self, message: InboundMessage) -> str:
        """The answer to a message that is only a picture, voice note or file (policy attachments_only: reply)."""
        name = display_name(message, self.persona.style(message.channel))
        return self.attachment_template.render(name=name, sign_off=self.persona.sign_off).strip()
