"""The sandbox's rate limits: an exact rolling window and a daily cap.

The window is exact, as HubSpot's ``TEN_SECONDLY_ROLLING`` policy is: a request is accepted only
if fewer than ``limit`` requests were accepted in the ``window`` seconds before it. Rejected
requests do not count. The clock is injected, so tests can prove the property without sleeping.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class RollingWindow:
    """Never more than ``limit`` accepted requests in any ``window`` seconds."""

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._accepted: deque[float] = deque()
        self.peak = 0

    def __repr__(self) -> str:
        used = len(self._accepted)
        return f"<RollingWindow {used}/{self.limit} per {self.window}s peak={self.peak}>"

    def _expire(self, now: float) -> None:
        horizon = now - self.window
        while self._accepted and self._accepted[0] <= horizon:
            self._accepted.popleft()

    def try_accept(self) -> bool:
        """Count the request and return True if the window has room, else return False."""
        now = self._clock()
        self._expire(now)
        if len(self._accepted) >= self.limit:
            return False
        self._accepted.append(now)
        self.peak = max(self.peak, len(self._accepted))
        return True

    def remaining(self) -> int:
        self._expire(self._clock())
        return max(0, self.limit - len(self._accepted))

    def retry_after(self) -> float:
        """Seconds until the oldest accepted request leaves the window."""
        now = self._clock()
        self._expire(now)
        if len(self._accepted) < self.limit:
            return 0.0
        return max(0.0, self._accepted[0] + self.window - now)


class DailyCap:
    """A count of accepted requests against a daily budget. The day starts again at each
    midnight UTC (the sandbox portal's time zone), or every ``day`` seconds when a test wants
    a short one (``--day-seconds``), or when the admin endpoint says so."""

    def __init__(
        self, limit: int, day: float = 86_400.0, clock: Callable[[], float] = time.time
    ) -> None:
        self.limit = limit
        self.day = day
        self._clock = clock
        self._today = self._day_now()
        self.used = 0

    def __repr__(self) -> str:
        return f"<DailyCap {self.used}/{self.limit}>"

    def _day_now(self) -> int:
        return int(self._clock() // self.day)

    def _roll(self) -> None:
        if (today := self._day_now()) != self._today:
            self._today, self.used = today, 0

    def try_accept(self) -> bool:
        self._roll()
        if self.used >= self.limit:
            return False
        self.used += 1
        return True

    def remaining(self) -> int:
        self._roll()
        return max(0, self.limit - self.used)

    def resets_at(self) -> float:
        """When the next day starts, in seconds since the epoch."""
        return (self._day_now() + 1) * self.day
