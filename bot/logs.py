"""Logs: one JSON object per line on stderr, carrying the ids of the message in hand, and nothing personal or
secret.

A line has `time` (ISO 8601, UTC), `level`, `logger` and `message`, then the fields of the context it was
logged in (log_context: a message's `channel`, `message_id` and `conversation_id`, set where its processing
starts, copied into the asyncio tasks started inside), the call's own `extra=` fields, and `exc`, the
traceback. Every text is scrubbed of the configured secrets; every text but an id or one of the product's own
codes is also redacted of personal data (PiiRedactor: the brand's `pii` patterns and card numbers). Ids are
left whole: they are what ops search by (and an X post id is a Luhn-valid digit run one time in ten).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from types import TracebackType
from typing import IO
from urllib.parse import quote, urlsplit

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from pydantic import SecretStr

from bot.classify.risk import PiiRedactor
from bot.config import Settings
from bot.errors import ConfigError
from bot.models import InboundMessage
from bot.policy.load import read_yaml, validate
from bot.policy.schema import RiskLexicon

logger = logging.getLogger(__name__)

IDS = frozenset(
    {"channel", "message_id", "conversation_id", "messages", "into_message_id", "reply_id", "case_id", "platform_id"}
)
# The product's own codes (intent and flag names, actions, decision reasons), never customer text: not redacted,
# which is also most of a line's cost on the worker's hottest line.
CODES = frozenset({"intent", "sentiment", "action", "reasons", "origin"})
MIN_SECRET = 6  # shorter values can't be scrubbed without mangling every line (and are no secret anyway)
_CONTEXT: ContextVar[Mapping[str, object]] = ContextVar("log_context")
_RECORD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_OWN = ("time", "level", "logger")  # written by the formatter: nothing to scrub


@contextlib.contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Add `fields` to every line logged inside the block, and in the tasks started inside it."""
    token = _CONTEXT.set({**_CONTEXT.get({}), **fields})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def message_fields(message: InboundMessage) -> dict[str, object]:
    """The fields that find every line of a message's path (the review API's /api/messages/{channel}/{id})."""
    return {"channel": message.channel, "message_id": message.id, "conversation_id": message.conversation_id}


class JsonFormatter(logging.Formatter):
    """A record as one line of JSON; `secrets` scrubbed from every text, `redact` run on every text but ids."""

    def __init__(self, redact: Callable[[str], str] = str, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._redact = redact
        # A secret can travel URL-encoded (a token in a request URL) as well as raw.
        forms = {form for value in secrets if value for form in (value, quote(value, safe=""), quote(value))}
        longest_first = sorted(forms, key=len, reverse=True)
        self._secrets = re.compile("|".join(map(re.escape, longest_first))) if forms else None

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")[:-6] + "Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        extra = {key: value for key, value in vars(record).items() if key not in _RECORD}
        for key, value in {**_CONTEXT.get({}), **extra}.items():
            line.setdefault(key, value)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps({key: value if key in _OWN else self._clean(key, value) for key, value in line.items()})

    def _clean(self, key: str, value: object) -> object:
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, Mapping):
            return {str(k): self._clean(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self._clean(key, item) for item in value]
        text = str(value)
        if self._secrets is not None:
            text = self._secrets.sub("[secret]", text)
        return text if key in IDS or key in CODES else self._redact(text)


class AccessLogger(AbstractAccessLogger):
    """aiohttp's access log as JSON lines at DEBUG (the platforms' webhook lines say what matters at INFO):
    method, path, status, duration; no query string (Meta's handshake carries the verify token in it), no client
    address or user agent (personal data)."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        fields = {"method": request.method, "path": request.path, "status": response.status}
        self.logger.debug("%s %s %d", *fields.values(), extra=fields | {"duration_ms": round(time * 1000, 1)})

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.DEBUG)


def secret_values(settings: Settings) -> list[str]:
    """Every configured secret: each SecretStr setting (alone or in a list) and any password in a URL setting."""
    values = []
    for name, field in type(settings).model_fields.items():
        value = getattr(settings, name)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, SecretStr) and item != field.default:  # a default ("unused") is no secret
                values.append(item.get_secret_value())
            elif isinstance(item, str) and "://" in item:
                values.append(urlsplit(item).password or "")
    return [value for value in values if len(value) >= MIN_SECRET]


def _uncaught(kind: type[BaseException], error: BaseException, traceback: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, traceback)
        return
    logger.critical("uncaught exception", exc_info=(kind, error, traceback))


def configure_logging(settings: Settings, stream: IO[str] | None = None) -> None:
    """Every logger's records as JSON lines on `stream` (stderr) from settings.log_level up, redacted with the
    brand's `pii` patterns (policies/risk.yaml) and scrubbed of every configured secret."""
    problem = None
    try:
        risk = settings.policies_dir / "risk.yaml"
        lexicon: RiskLexicon | None = validate(risk, RiskLexicon, read_yaml(risk))
    except ConfigError as error:  # a tool run without the brand's files still logs, redacting what it can
        lexicon, problem = None, error
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(PiiRedactor(lexicon), secret_values(settings)))
    logging.basicConfig(level=settings.log_level, handlers=[handler], force=True)
    logging.captureWarnings(True)  # warnings and crashes too: stderr stays JSON, scrubbed and redacted
    sys.excepthook = _uncaught
    for noisy in ("httpx", "httpx2", "openai._base_client"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if problem is not None:
        logger.warning("logs redact card numbers only, no other personal data: %s", problem)
