"""HTTP details that both directions share (platform deliveries and language-model calls)."""

from __future__ import annotations

from datetime import datetime
from email.utils import parsedate_to_datetime


def retry_after(value: str | None) -> float | None:
    """Retry-After as seconds, from either of its two forms (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:  # not a number: it may be an HTTP date
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(tz=None).astimezone()).total_seconds())
    except (TypeError, ValueError):  # neither form: ignore the header rather than fail the request
        return None
