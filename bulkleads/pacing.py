"""When the next request may leave: never faster than the portal allows, in any rolling window.

HubSpot counts requests in a *rolling* window (``TEN_SECONDLY_ROLLING``), and the budget is
shared by every client of the same app and portal. Two gates keep every request inside it:

1. spacing: an ``aiolimiter.AsyncLimiter`` with capacity 1 and a period of ``window / limit``
   spreads requests evenly (a bucket of capacity N would let 2N into one rolling window);
2. the window guard: a request may start only while fewer than ``limit`` of our requests were
   in flight or *answered* within the last ``window`` seconds. A request reaches the server
   before its answer comes back, so counting answers (not starts) bounds what the server counts,
   whatever the network jitter: the limit holds at the server, not only at the client.

On top of that the pacer adapts, from what HubSpot says:
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
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final

from aiolimiter import AsyncLimiter

DEFAULT_MARGIN: Final = 0.01
_MIN_FRACTION: Final = 0.05  # never slower than 5 % of the ceiling
_RECOVERY_STEP: Final = 0.1  # each calm window adds 10 % of the ceiling back
_MAX_PLAUSIBLE_WAIT: Final = 300.0
_RETUNE_THRESHOLD: Final = 0.01
_MIN_WAIT: Final = 0.001  # a shorter sleep may not move a coarse clock at all
_OTHERS_MARGIN: Final = 1.0  # requests per window kept free when another client is seen
_YIELD: Final = 0.9  # pace kept when a shared window is found full


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
    """Shared by every worker: ``async with pacer.slot():`` around each request."""

    def __init__(
        self,
        limit: float,
        window: float = 1.0,
        *,
        margin: float = DEFAULT_MARGIN,
        made: Iterable[float] = (),
    ) -> None:
        """``made``: loop times at which requests this run made outside the pacer (the CRM
        property list) were answered: they count in the window like our others, and the
        portal's count of them is not taken for another client's use."""
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
        self._starts: deque[float] = deque(sorted(made))  # our starts in the last window
        self._answers: deque[float] = deque(sorted(made))  # when our answered requests came back
        self._in_flight = 0
        self._answered = asyncio.Event()
        self._gate = asyncio.Lock()
        self._others = 0.0  # requests per window another client of the portal uses
        self._server_cap: int | None = None  # the portal's own limit, when its window is ours
        self._last_change = self._last_cut = float("-inf")  # loop times of pace changes
        self._watching_since: float | None = None  # first answer with rate-limit headers
        self._server_errors = 0

    def __repr__(self) -> str:
        return (
            f"<Pacer rate={self._rate:.3f}/s ceiling={self._ceiling:.3f}/s "
            f"in_flight={self._in_flight} others={self._others:.1f}/window "
            f"paused_until={self._paused_until:.3f}>"
        )

    @property
    def rate(self) -> float:
        """The current pace, in requests per second."""
        return self._rate

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a place in the window for one request, from its start until its answer."""
        await self.acquire()
        try:
            yield
        finally:
            self.release()

    async def acquire(self) -> None:
        """Wait until a request may start: no pause, spacing kept, room in the window."""
        loop = asyncio.get_running_loop()
        async with self._gate:  # one waiter at a time, so requests leave in arrival order
            while True:
                wait = self._paused_until - loop.time()
                if wait > 0:
                    await asyncio.sleep(max(wait, _MIN_WAIT))
                    continue
                await self._limiter.acquire()
                if self._paused_until > loop.time():
                    continue
                if await self._window_has_room(loop.time()):
                    break
            now = loop.time()
            self._in_flight += 1
            self._starts.append(now)
            _forget(self._starts, now - self.window)

    def release(self) -> None:
        """The request was answered (or abandoned): it counts in the window from now on."""
        self._in_flight -= 1
        self._answers.append(asyncio.get_running_loop().time())
        self._answered.set()

    async def _window_has_room(self, now: float) -> bool:
        """True when a request may start now; otherwise waits for room and returns False."""
        _forget(self._answers, now - self.window)
        limit = min(self.limit, self._server_cap or self.limit)
        # Our own requests alone never exceed the limit (floor). When another client of the
        # portal is seen, its estimated share, rounded up, and one request more stay free: its
        # timing is not ours to smooth, and crowding it out would only hide its real use.
        others = 0
        if self._others >= 1:
            others = math.ceil(min(self._others, 0.9 * limit) - 0.2) + 1
        cap = max(1, math.floor(limit) - others)
        if self._in_flight + len(self._answers) < cap:
            return True
        if self._answers:
            await asyncio.sleep(max(self._answers[0] + self.window - now, _MIN_WAIT))
        else:
            self._answered.clear()
            await self._answered.wait()
        return False

    def pause(self, seconds: float) -> None:
        """Hold every worker for ``seconds`` (after a 429) and halve the pace."""
        now = asyncio.get_running_loop().time()
        self._paused_until = max(self._paused_until, now + seconds)
        self._last_cut = self._last_change = now
        self._set_rate(self._rate * 0.5)

    def observe(self, status: int | None, info: RateHeaders) -> None:
        """Feed back one response: its status (None: no answer) and rate-limit headers.

        Slowing down is immediate; speeding up is by one step per window, so that after a
        429 the pace climbs back gently instead of straight into the next one.
        """
        now = asyncio.get_running_loop().time()
        if status == 429 and self._starts:
            # A refused request does not count at the server; stop counting it as ours, or
            # another client's use would look smaller than it is.
            self._starts.pop()
        contended = False
        if info.max and info.interval_ms:
            server = info.max / (info.interval_ms / 1000) * (1 - self._margin)
            self._ceiling = min(self._configured, server)
            same_window = abs(info.interval_ms / 1000 - self.window) <= self.window * 0.01
            self._server_cap = info.max if same_window else None
            if info.remaining is not None:
                contended = self._track_others(info.max, info.remaining)
        budget = self._ceiling * (1 - self._others_share(info.max))
        if status is not None and 500 <= status < 600:
            self._server_errors += 1
            if self._server_errors >= 3:  # a burst of 5xx: HubSpot may be throttling
                self._slow_down(now, 0.7)
                self._server_errors = 0
        elif status is not None and status < 400:
            self._server_errors = 0
            if contended:
                # The window is full and someone else is in it: we may be crowding them out
                # (their refused requests do not show in the count), so yield some room.
                self._slow_down(now, _YIELD)
            elif now - self._last_change >= self.window:
                self._last_change = now
                self._set_rate(min(budget, self._rate + self._ceiling * _RECOVERY_STEP))
        if self._rate > budget:
            self._set_rate(budget)

    def _slow_down(self, now: float, factor: float) -> None:
        """Cut the pace, at most once a window (one crowded window is one signal, not many)."""
        if now - self._last_cut >= self.window:
            self._last_cut = self._last_change = now
            self._set_rate(self._rate * factor)

    def _track_others(self, limit: int, remaining: int) -> bool:
        """Estimate another client's use: the window's count minus our own starts in it.
        Returns True when the window is full and another client is in it."""
        now = asyncio.get_running_loop().time()
        _forget(self._starts, now - self.window)
        seen = max(0.0, (limit - remaining) - len(self._starts))
        if self._watching_since is None:
            self._watching_since = now
        # In our first window we have seen only part of one of theirs: a client that started
        # with us has filled just that part, so scale up (too slow at first beats a 429).
        watched = max(now - self._watching_since, self.window * 0.1)
        sample = seen * self.window / watched if watched < self.window else seen
        self._others += 0.3 * (sample - self._others)
        return remaining == 0 and seen >= 2  # one is within our own timing noise

    def _others_share(self, limit: int | None) -> float:
        """The share of the pace to leave to other clients, a request of margin included."""
        if self._others < 1.0:  # within our own timing noise: nobody else is there
            return 0.0
        return min(0.9, (self._others + _OTHERS_MARGIN) / (limit or self.limit))

    def _set_rate(self, rate: float) -> None:
        rate = max(rate, self._ceiling * _MIN_FRACTION)
        if abs(rate - self._rate) <= self._rate * _RETUNE_THRESHOLD:
            return
        self._rate = rate
        self._limiter = AsyncLimiter(1, 1 / rate)
        # The new limiter starts empty: hold the next start one new gap after the last one, so
        # that a worker released by the old limiter cannot double up with the new one.
        if self._starts:
            self._paused_until = max(self._paused_until, self._starts[-1] + 1 / rate)


def _forget(times: deque[float], horizon: float) -> None:
    while times and times[0] <= horizon:
        times.popleft()
