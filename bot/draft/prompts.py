"""The brand's persona and prompt templates (prompts/), loaded and checked at start, rendered per message."""

from __future__ import annotations

from pathlib import Path

import jinja2
from pydantic import BaseModel, ConfigDict, Field

from bot.draft.knowledge import Passage
from bot.errors import ConfigError
from bot.models import Context, InboundMessage
from bot.policy.load import read_yaml, validate


class Persona(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="Who the bot signs as.")
    brand: str = Field(min_length=1)
    sign_off: str = Field(min_length=1)
    voice: list[str] = Field(min_length=1)
    do: list[str] = Field(default_factory=list)
    dont: list[str] = Field(default_factory=list)
    banned_phrases: list[str] = Field(default_factory=list)


def environment(directory: Path) -> jinja2.Environment:
    """Templates fail loudly on a missing variable instead of rendering an empty hole into a reply."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def compile_template(env: jinja2.Environment, source: str, where: str) -> jinja2.Template:
    try:
        return env.from_string(source)
    except jinja2.TemplateSyntaxError as error:
        raise ConfigError(f"{where}:{error.lineno}: template error: {error.message}") from error


def display_name(message: InboundMessage) -> str:
    """How a reply addresses the customer: their @handle, or a neutral word when there is none."""
    handle = message.author.handle.strip().lstrip("@")
    return f"@{handle}" if handle else "there"


class Prompts:
    """persona.yaml plus the system.j2 and user.j2 chat templates."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.persona = validate(directory / "persona.yaml", Persona, read_yaml(directory / "persona.yaml"))
        self.env = environment(directory)
        self.system = self._template("system.j2")
        self.user = self._template("user.j2")

    def _template(self, name: str) -> jinja2.Template:
        path = self.directory / name
        try:
            source = path.read_text(encoding="utf-8")
        except FileNotFoundError as error:
            raise ConfigError(f"{path}: file not found") from error
        return compile_template(self.env, source, str(path))

    def chat(
        self, message: InboundMessage, context: Context, passages: list[Passage], max_chars: int
    ) -> list[dict[str, str]]:
        """Chat-completion messages: system (persona, facts, rules), the conversation so far, the new message."""
        values = {
            "persona": self.persona,
            "message": message,
            "passages": passages,
            "max_chars": max_chars,
            "name": display_name(message),
        }
        try:
            chat = [{"role": "system", "content": self.system.render(values)}]
            for turn in context.turns:
                chat.append({"role": "user" if turn.role == "customer" else "assistant", "content": turn.text})
            chat.append({"role": "user", "content": self.user.render(values)})
        except jinja2.TemplateError as error:
            raise ConfigError(f"{self.directory}: template failed to render: {error}") from error
        return chat
