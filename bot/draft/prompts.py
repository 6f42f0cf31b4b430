"""The brand's persona and prompt templates (prompts/), loaded and checked at start, rendered per message."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import jinja2
from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.channels.base import MAX_CHARS, max_chars
from bot.draft.backend import Chat
from bot.draft.knowledge import Passage
from bot.errors import ConfigError
from bot.models import Author, Context, InboundMessage
from bot.policy.load import read_yaml, validate


class ChannelStyle(BaseModel):
    """How replies look on one channel: the brand's length, emoji and addressing rules."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_chars: int | None = Field(None, gt=0, description="Longest reply; unset: the platform's limit.")
    emoji: int = Field(0, ge=0, description="Most emoji a reply may carry; extra ones are removed.")
    address: bool = Field(True, description="Address the customer by their @handle.")


class Persona(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="Who the bot signs as.")
    brand: str = Field(min_length=1)
    sign_off: str = Field(min_length=1)
    voice: list[str] = Field(min_length=1)
    do: list[str] = Field(default_factory=list)
    dont: list[str] = Field(default_factory=list)
    banned_phrases: list[str] = Field(default_factory=list)
    channels: dict[str, ChannelStyle] = Field(description="Style per channel; `default` for the others.")

    @field_validator("channels")
    @classmethod
    def _known_channels(cls, value: dict[str, ChannelStyle]) -> dict[str, ChannelStyle]:
        if "default" not in value:
            raise ValueError("needs a `default` style")
        unknown = sorted(set(value) - set(MAX_CHARS) - {"default"})
        if unknown:
            raise ValueError(f"unknown channels {unknown}; known: {sorted(MAX_CHARS)}")
        too_long = [name for name, style in value.items() if (style.max_chars or 0) > MAX_CHARS.get(name, 10**9)]
        if too_long:
            raise ValueError(f"max_chars above the platform's limit for {too_long}")
        return value

    def style(self, channel: str) -> ChannelStyle:
        """The channel's style with its max_chars made concrete (never above what the platform takes)."""
        style = self.channels.get(channel, self.channels["default"])
        platform = max_chars(channel)
        return style.model_copy(update={"max_chars": min(style.max_chars or platform, platform)})


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


def render(template: jinja2.Template, where: object, **values: object) -> str:
    """The rendered template, or a ConfigError naming its file (an undefined variable, a failing filter)."""
    try:
        return template.render(**values)
    except jinja2.TemplateError as error:
        raise ConfigError(f"{where}: template failed to render: {error}") from error


def display_name(message: InboundMessage, style: ChannelStyle) -> str:
    """How a reply addresses the customer: their @handle where the persona says so, else a neutral word."""
    handle = message.author.handle.strip().lstrip("@")
    return f"@{handle}" if handle and style.address else "there"


class Prompts:
    """persona.yaml, the system.j2 and user.j2 chat templates, and guidance/<intent>.md (optional)."""

    def __init__(self, directory: Path, intents: set[str]) -> None:
        self.directory = directory
        self.persona = validate(directory / "persona.yaml", Persona, read_yaml(directory / "persona.yaml"))
        self.env = environment(directory)
        self.system = self._template("system.j2")
        self.user = self._template("user.j2")
        self.guidance = {
            path.stem: path.read_text(encoding="utf-8").strip()
            for path in sorted((directory / "guidance").glob("*.md"))
        }
        unknown = sorted(set(self.guidance) - intents)
        if unknown:
            raise ConfigError(f"{directory / 'guidance'}: no intent named {unknown} in policies/intents.yaml")
        self._try()

    def _template(self, name: str) -> jinja2.Template:
        path = self.directory / name
        try:
            source = path.read_text(encoding="utf-8")
        except FileNotFoundError as error:
            raise ConfigError(f"{path}: file not found") from error
        return compile_template(self.env, source, str(path))

    def chat(
        self, message: InboundMessage, intent: str, context: Context, passages: list[Passage], history: int
    ) -> Chat:
        """Chat-completion messages: system (persona, facts, guidance, rules), the last `history` turns of the
        conversation, the new message."""
        style = self.persona.style(message.channel)
        values = {
            "persona": self.persona,
            "message": message,
            "intent": intent,
            "guidance": self.guidance.get(intent, ""),
            "passages": passages,
            "style": style,
            "max_chars": style.max_chars,
            "name": display_name(message, style),
        }
        chat = [{"role": "system", "content": render(self.system, self.directory / "system.j2", **values)}]
        for turn in context.turns[-history:] if history else ():
            chat.append({"role": "user" if turn.role == "customer" else "assistant", "content": turn.text})
        chat.append({"role": "user", "content": render(self.user, self.directory / "user.j2", **values)})
        return chat

    def _try(self) -> None:
        """Render both templates once at start, so an undefined variable fails the start, not a message."""
        now = datetime.now(UTC)
        sample = InboundMessage(
            channel="generic",
            id="start",
            conversation_id="start",
            text="Hello?",
            author=Author(id="start", handle="customer"),
            created_at=now,
            public=False,
            received_at=now,
        )
        for intent in ("", *self.guidance):
            self.chat(sample, intent, Context(), [Passage("file#section", "File: Section", "A fact.")], 1)
