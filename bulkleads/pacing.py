"""When the next request may leave: never faster than the portal allows, in any rolling window.

HubSpot counts requests in a *rolling* window (``TEN_SECONDLY_ROLLING``), and the budget is
shared by every client of the same app and portal. A leaky bucket with capacity ``N`` lets up to
2N requests into one rolling window, so the pacer spaces requests evenly instead: an
``aiolimiter.AsyncLimiter`` with capacity 1 and a period of ``window / limit``, widened by a small
margin so that arrival jitter cannot push N+1 requests into one window at the server.

On top of that spacing the pacer adapts, from what HubSpot says:

- ``X-HubSpot-RateLimit-Max`` / ``-Interval-Milliseconds`` lower the ceiling when the portal's
  limit is below the configured rate;
- ``-Remaining`` minus our own requests in the window tells how much another client of the same
  portal is using; the pacer leaves that share to it;
- a 429 pauses every worker (``Retry-After`` when plausible, else the interval) and halves the
  rate; a run of 5xx answers (HubSpot sometimes throttles with a 500) cuts it too;
- every success climbs back toward the ceiling in small steps.

Time comes from the running event loop, so tests drive the pacer on a loop with a virtual clock
and never sleep for real.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final

from aiolimiter import AsyncLimiter

DEFAULT_MARGIN: Final = 0.02
_MIN_FRACTION: Final = 0.05  # never slower than 5 % of the ceiling
_RECOVERY_STEP: Final = 0.02  # each success adds 2 % of the ceiling back
_MAX_PLAUSIBLE_WAIT: Final = 300.0
_RETUNE_THRESHOLD: Final = 0.01


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
        def number(name: str) -> int | None:
            value = headers.get(f"x-hubspot-ratelimit-{name}")
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
        except ValueError:
            seconds = _from_http_date(text, now)
        if seconds is not None and math.isfinite(seconds):
            if _MAX_PLAUSIBLE_WAIT < seconds <= _MAX_PLAUSIBLE_WAIT * 1000:
                seconds /= 1000  # only plausible as milliseconds
            if 0 < seconds <= _MAX_PLAUSIBLE_WAIT:
                return seconds
    if interval_ms:
        return min(interval_ms / 1000, _MAX_PLAUSIBLE_WAIT)
    return 1.0


def _from_http_date(text: str, now: datetime | None) -> float | None:
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - (now or datetime.now(UTC))).total_seconds()


class Pacer:
    """Shared by every worker: ``await pacer.acquire()`` before each request starts."""

    def __init__(
        self, limit: float, window: float = 1.0, *, margin: float = DEFAULT_MARGIN
    ) -> None:
        if limit <= 0 or window <= 0:
            raise ValueError("limit and window must be positive")
        self.limit = limit
        self.window = window
        self._margin = margin
        self._configured = limit / window * (1 - margin)  # requests per second
        self._ceiling = self._configured
        self._rate = self._configured
        self._limiter = AsyncLimiter(1, 1 / self._rate)
        self._paused_until = 0.0
        self._starts: deque[float] = deque()
        self._others = 0.0  # requests per window another client of the portal uses
        self._server_errors = 0

    def __repr__(self) -> str:
        return (
            f"<Pacer rate={self._rate:.3f}/s ceiling={self._ceiling:.3f}/s "
            f"others={self._others:.1f}/window paused_until={self._paused_until:.3f}>"
        )

    @property
    def rate(self) -> float:
        """The current pace, in requests per second."""
        return self._rate

    async def acquire(self) -> None:
        """Wait until a request may start: no pause in force and the spacing respected."""
        loop = asyncio.get_running_loop()
        while True:
            wait = self._paused_until - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            await self._limiter.acquire()
            now = loop.time()
            if self._paused_until <= now:
                self._starts.append(now)
                self._forget_before(now - self.window)
                return

    def pause(self, seconds: float) -> None:
        """Hold every worker for ``seconds`` (after a 429) and halve the pace."""
        now = asyncio.get_running_loop().time()
        self._paused_until = max(self._paused_until, now + seconds)
        self._set_rate(self._rate * 0.5)

    def observe(self, status: int | None, headers: Mapping[str, str] | None) -> None:
        """Feed back one response: its status and rate-limit headers."""
        info = RateHeaders.parse(headers) if headers is not None else RateHeaders()
        if info.max and info.interval_ms:
            server = info.max / (info.interval_ms / 1000) * (1 - self._margin)
            self._ceiling = min(self._configured, server)
            if info.remaining is not None:
                self._track_others(info.max, info.remaining)
        budget = self._ceiling * (1 - self._others_share(info))
        if status is not None and 500 <= status < 600:
            self._server_errors += 1
            if self._server_errors >= 3:  # a burst of 5xx: HubSpot may be throttling
                self._set_rate(self._rate * 0.7)
                self._server_errors = 0
            return
        if status is not None and status < 400:
            self._server_errors = 0
            self._set_rate(min(budget, self._rate + self._ceiling * _RECOVERY_STEP))
        if self._rate > budget:
            self._set_rate(budget)

    def _track_others(self, limit: int, remaining: int) -> None:
        """Estimate another client's use: the window's count minus our own starts in it."""
        self._forget_before(asyncio.get_running_loop().time() - self.window)
        sample = max(0.0, (limit - remaining) - len(self._starts))
        self._others += 0.2 * (sample - self._others)

    def _forget_before(self, horizon: float) -> None:
        while self._starts and self._starts[0] <= horizon:
            self._starts.popleft()

    def _others_share(self, info: RateHeaders) -> float:
        if not info.max:
            return 0.0
        return min(0.9, self._others / info.max)

    def _set_rate(self, rate: float) -> None:
        rate = max(rate, self._ceiling * _MIN_FRACTION)
        if abs(rate - self._rate) <= self._rate * _RETUNE_THRESHOLD:
            return
        self._rate = rate
        self._limiter = AsyncLimiter(1, 1 / rate)
        # The new limiter starts empty: hold the next start one new gap after the last one, so
        # that workers released by the old limiter cannot double up with the new one.
        if self._starts:
            self._paused_until = max(self._paused_until, self._starts[-1] + 1 / rate)
