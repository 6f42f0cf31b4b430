"""The service's error hierarchy: each boundary maps foreign errors into these once."""

from __future__ import annotations


class BotError(Exception):
    """Base of every error the service raises on purpose."""


class ConfigError(BotError):
    """A configuration file is invalid; the message names the file and the reason."""


class BadRequest(BotError):
    """A webhook body that can't be accepted; `reason` is a short metric label, the message says more."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class Unauthentic(BadRequest):
    """A delivery whose signature (or secret, or timestamp) is missing or wrong: answered 401, never processed."""


class ChannelError(BotError):
    """A delivery to a platform failed. `reason` becomes the review case's reason when the reply goes to a
    person instead: "delivery_failed", or "outside_messaging_window" (Meta's 24 hours have passed)."""

    def __init__(
        self, message: str, *, retryable: bool, retry_after: float | None = None, reason: str = "delivery_failed"
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.reason = reason


class DraftError(BotError):
    """The language model could not produce a usable draft; `kind` is a short metric label."""

    def __init__(self, message: str, *, kind: str = "error") -> None:
        super().__init__(message)
        self.kind = kind
