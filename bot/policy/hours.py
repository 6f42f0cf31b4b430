"""Reviewers' working time, from the policy's hours, time zone and holidays. Pure: `now` is always given.

A review deadline counts working time: a normal case that arrives on Saturday evening is due a few hours
after Monday's opening, not four hours later in an empty office.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.policy.schema import ReviewHours

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HORIZON_DAYS = 400  # a policy open on no day in a year is rejected at load; this bounds the search


def _shift(hours: ReviewHours, day: date) -> tuple[datetime, datetime] | None:
    """The day's opening and closing as aware datetimes, or None if nobody works that day."""
    span = hours.weekly.get(_DAYS[day.weekday()])  # type: ignore[call-overload]
    if span is None or day in hours.holidays:
        return None
    zone = ZoneInfo(hours.timezone)
    opening, closing = span.split("-")
    start = datetime.combine(day, time.fromisoformat(opening), zone)
    end = (
        datetime.combine(day + timedelta(days=1), time(0), zone)
        if closing == "24:00"
        else datetime.combine(day, time.fromisoformat(closing), zone)
    )
    return start, end


def after_working_time(hours: ReviewHours, now: datetime, minutes: float) -> datetime:
    """The moment `minutes` of reviewers' working time have passed from `now` (from the next opening if
    they are off now); with 0 minutes, when the next person is at work (`now` itself if someone is)."""
    left = timedelta(minutes=minutes)
    day = now.astimezone(ZoneInfo(hours.timezone)).date()
    for _ in range(_HORIZON_DAYS):
        shift = _shift(hours, day)
        if shift is not None:
            start, end = max(shift[0], now), shift[1]
            if start < end:
                if start + left <= end:
                    return start + left
                left -= end - start
        day += timedelta(days=1)
    raise ValueError("the review hours have no working time within a year")


def is_working(hours: ReviewHours, now: datetime) -> bool:
    return after_working_time(hours, now, 0) == now
