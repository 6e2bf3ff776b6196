"""What HubSpot says about its rate limits, read carefully: the limit as a value, its headers,
and how long a 429 asks us to wait. Pure: no clock but the one a caller passes.

Headers may be missing, garbled or absurd (a proxy, a hostile server): each reads as unknown
rather than as zero, and a window or a wait that is not plausible is not believed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final

MAX_PLAUSIBLE_WAIT: Final = 300.0  # seconds; a longer Retry-After or interval is not believed
_PLAUSIBLE_INTERVAL_MS: Final = (100, 60_000)
_PLAUSIBLE_MAX: Final = (1, 100_000)


@dataclass(frozen=True, slots=True)
class Limit:
    """A rate limit: ``requests`` per ``window`` seconds."""

    requests: float
    window: float

    @property
    def rate(self) -> float:
        """Requests per second."""
        return self.requests / self.window

    @property
    def cap(self) -> int:
        """Requests one window holds (at least one)."""
        return max(1, math.floor(self.requests + 1e-9))

    def __str__(self) -> str:
        return f"{self.requests:g} per {self.window:g} s"

    def minimum_seconds(self, requests: int) -> float:
        """The least time ``requests`` take at this limit, answers' time aside: every full
        window's budget at once, as a rolling window admits it."""
        if requests <= 0:
            return 0.0
        return (math.ceil(requests / self.cap) - 1) * self.window


@dataclass(frozen=True, slots=True)
class RateHeaders:
    """HubSpot's rate-limit headers; each is None when missing or unreadable."""

    max: int | None = None
    remaining: int | None = None
    interval_ms: int | None = None
    daily: int | None = None
    daily_remaining: int | None = None

    @classmethod
    def parse(cls, headers: Mapping[str, str]) -> RateHeaders:
        lowered = {k.lower(): v for k, v in headers.items()}

        def number(name: str) -> int | None:
            value = lowered.get(f"x-hubspot-ratelimit-{name}")
            try:
                parsed = int(str(value).strip())
            except (TypeError, ValueError):
                return None
            return parsed if parsed >= 0 else None

        return cls(
            max=number("max"),
            remaining=number("remaining"),
            interval_ms=number("interval-milliseconds") or None,
            daily=number("daily"),
            daily_remaining=number("daily-remaining"),
        )

    def limit(self) -> Limit | None:
        """The window these headers state, when they state a plausible one."""
        if self.max is None or self.interval_ms is None:
            return None
        low_ms, high_ms = _PLAUSIBLE_INTERVAL_MS
        low_max, high_max = _PLAUSIBLE_MAX
        if not (low_ms <= self.interval_ms <= high_ms and low_max <= self.max <= high_max):
            return None
        return Limit(self.max, self.interval_ms / 1000)


def retry_after_seconds(
    value: str | None, *, interval_ms: int | None = None, now: datetime | None = None
) -> float:
    """How long to pause after a 429.

    ``Retry-After`` when it is plausible (seconds; a value above 300 and up to 300,000 is read as
    milliseconds, since sources disagree which HubSpot sends; or an HTTP date), else the rate-limit
    interval, else one second. Negative, huge or garbage values are not plausible.
    """
    if value is not None:
        text = value.strip()
        seconds: float | None
        try:
            seconds = float(text)
            if MAX_PLAUSIBLE_WAIT < seconds <= MAX_PLAUSIBLE_WAIT * 1000:
                seconds /= 1000  # a number only plausible as milliseconds (a date never is)
        except ValueError:
            seconds = _from_http_date(text, now)
        if seconds is not None and math.isfinite(seconds) and 0 < seconds <= MAX_PLAUSIBLE_WAIT:
            return seconds
    if interval_ms:
        return min(interval_ms / 1000, MAX_PLAUSIBLE_WAIT)
    return 1.0


def _from_http_date(text: str, now: datetime | None) -> float | None:
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - (now or datetime.now(UTC))).total_seconds()


def in_force(asked: Limit, portal: Limit | None, *, explicit: bool) -> Limit:
    """The limit a run keeps: the portal's once it has stated one, capped by a pace the user
    set (``explicit``), compared as a rate over the portal's window; else the pace asked for."""
    if portal is None:
        return asked
    if not explicit:
        return portal
    return Limit(min(portal.requests, asked.rate * portal.window), portal.window)
