"""When the next request may leave: as soon as the portal's rolling window has room, never past it.

HubSpot counts requests in a *rolling* window (``TEN_SECONDLY_ROLLING``: 100 or 190 requests per
10 s today), shared by every client of the same app and portal. The pacer decides from three
facts, all kept over the portal's own window:

1. **The limit.** The portal's own (``X-HubSpot-RateLimit-Max`` per ``-Interval-Milliseconds``)
   from its first answer on (or remembered from the run before, see
   :mod:`bulkleads.send.portal_memory`);
   until then the configured pace. A pace the user set (``--rate``) caps it, compared as a rate
   over the portal's window: 10 per 1 s and 100 per 10 s are the same pace. Until the portal
   has answered once, one request at a time: its answer says what the window is.
2. **The window guard.** A request may start only while fewer than ``limit`` of our requests
   are in flight or were *answered* within the last window. A request reaches the server before
   its answer comes back, so counting answers bounds what the server counts whatever the
   jitter. "Ours" includes the requests of the runs just before this one (``made``): a dry run
   then the run then a retry is one stream of requests, not three clients.
3. **The others.** ``-Remaining`` tells how much of the window is used; minus our own requests
   the server had surely counted, it is what another client of the portal uses. The guard
   leaves that share (and one request more) free. The estimate rises at once and falls as
   fast as their requests leave the window, so the pace is back within a window of their
   going.

Two ways to spend the room:

- **burst**: the window is ours (nobody else seen) and longer than a second. A request leaves
  as soon as the guard allows, so an empty window's whole budget goes at once, as HubSpot's
  rolling window admits, and a job of ``n`` requests takes ``ceil(n / limit) - 1`` windows
  plus its answers' time instead of ``n / limit`` windows;
- **spacing**: a per-second policy, another client in the window, or a recovery after a 429
  or a run of 5xx. An ``aiolimiter.AsyncLimiter`` of capacity 1 spreads requests evenly at the
  rate left to us (a bucket of capacity N would let 2N into one rolling window).

A 429 pauses every worker (``Retry-After`` when plausible, else the interval) and halves the
spacing rate, which climbs back a quarter of the limit every half window. Time comes from the
running event loop, so tests drive the pacer on a loop with a virtual clock and never sleep.
"""

from __future__ import annotations

import asyncio
import logging
import math
from bisect import bisect_right
from collections import deque
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Final

from aiolimiter import AsyncLimiter

from bulkleads.hubspot.limits import Limit, RateHeaders, in_force

DEFAULT_MARGIN: Final = 0.01  # of the spacing rate; the window guard holds the limit exactly
_MIN_FRACTION: Final = 0.05  # never slower than 5 % of the limit
_RECOVERY_STEP: Final = 0.25  # of the limit, every half window without trouble
_RETUNE_THRESHOLD: Final = 0.01
_MIN_WAIT: Final = 0.001  # a shorter sleep may not move a coarse clock at all
_OTHERS_MARGIN: Final = 1.0  # requests per window kept free when another client is seen
_YIELD: Final = 0.9  # spacing kept when a shared window is found full
_WHOLE_WINDOWS: Final = 10  # windows a run spends whole before it leaves a newcomer room
_BURST_FROM: Final = 1.0  # seconds: a window this short or shorter is a per-second policy
_LOG: Final = logging.getLogger("bulkleads.send.pacing")


Made = float | tuple[float, float]  # an earlier request: its answer time, or (start, answer)


class Pacer:
    """Shared by every worker: ``async with pacer.slot() as started:`` around each request,
    and :meth:`observe` with each answer."""

    def __init__(
        self,
        limit: float,
        window: float = 1.0,
        *,
        margin: float = DEFAULT_MARGIN,
        made: Iterable[Made] = (),
        explicit: bool = True,
        portal: Limit | None = None,
    ) -> None:
        """``limit`` per ``window``: the pace asked for; ``explicit`` False when it is only
        the API's documented default, which the portal's own limit then replaces.
        ``made``: loop times of requests made before this pacer (the CRM property list, the
        runs just before this one): they count in the window as ours, and the portal's count
        of them is not taken for another client's use. ``portal``: the portal's limit as
        last seen, when it is known before the first answer."""
        if not (limit > 0 and window > 0 and math.isfinite(limit) and math.isfinite(window)):
            raise ValueError("limit and window must be positive")
        self.asked = Limit(limit, window)
        self._explicit = explicit
        self._margin = margin
        self._portal = portal
        self._heard = portal is not None  # until then: one request at a time
        history = sorted(((m, m) if isinstance(m, float | int) else m for m in made), key=_answer)
        self._starts: deque[float] = deque(sorted(start for start, _ in history))
        self._done: deque[tuple[float, float]] = deque(history)  # (start, answer) by answer
        self._refused: set[float] = set()  # starts of requests refused with a 429
        self._in_flight = 0
        self._answered = asyncio.Event()
        self._gate = asyncio.Lock()
        self._others = 0.0  # requests per window another client of the portal uses
        self._factor = 1.0  # < 1 after a 429 or a run of 5xx: spacing, climbing back
        self._spacer: AsyncLimiter | None = None
        self._spacer_rate = 0.0
        self._paused_until = 0.0
        self._last_change = self._last_cut = float("-inf")  # loop times of pace changes
        self._server_errors = 0
        self._watching_since: float | None = None  # first answer with rate-limit headers
        self._warned = False
        self.first_start: float | None = None  # this run's first request
        self._carried: list[float] = []  # answers of earlier requests, at the first start
        self.last_answer: float | None = None
        self.accepted = 0  # answers other than a 429 (a transport failure may have counted)

    def __repr__(self) -> str:
        return (
            f"<Pacer limit={self.limit()} {'burst' if self.bursting() else 'spacing'} "
            f"rate={self.rate:.3f}/s in_flight={self._in_flight} "
            f"others={self._others:.1f}/window paused_until={self._paused_until:.3f}>"
        )

    # -- what is in force ----------------------------------------------------------------------
    def limit(self) -> Limit:
        """The limit in force: the portal's once it has said it, capped by a pace the user set
        (compared as a rate over the portal's window); else the pace asked for."""
        return in_force(self.asked, self._portal, explicit=self._explicit)

    @property
    def portal(self) -> Limit | None:
        """The portal's own limit, once it has said it (or as remembered)."""
        return self._portal

    @property
    def others(self) -> float:
        """Requests per window another client of the portal is seen to use."""
        return self._others if self._others >= 1 else 0.0

    def bursting(self) -> bool:
        """True while the window is ours to spend at once (see the module's docstring)."""
        return self.limit().window > _BURST_FROM and self._others < 1 and self._factor >= 1

    @property
    def rate(self) -> float:
        """The spacing pace, in requests per second (used while not bursting)."""
        limit = self.limit()
        ceiling = limit.rate * (1 - self._margin)
        share = 0.0
        if self._others >= 1:
            share = min(0.9, (self._others + _OTHERS_MARGIN) / limit.requests)
        return max(ceiling * _MIN_FRACTION, ceiling * (1 - share) * self._factor)

    def fastest(self) -> float:
        """The least time this run's accepted requests could have taken at the limit in force,
        answers' time aside, given the earlier requests of ours it found in the window."""
        if self.first_start is None or not self.accepted:
            return 0.0
        limit = self.limit()
        if limit.window <= _BURST_FROM:  # a per-second policy is spaced, not burst
            return (self.accepted - 1) / limit.rate
        carried = [a + limit.window for a in self._carried if a > self.first_start - limit.window]
        # Each of the window's slots frees when the request in it leaves the window; a slot
        # then carries one request a window. Request k takes slot k mod cap, k // cap rounds on.
        slots = sorted([self.first_start] * max(0, limit.cap - len(carried)) + carried)
        slots = slots[: limit.cap]
        last = self.accepted - 1
        return slots[last % limit.cap] + (last // limit.cap) * limit.window - self.first_start

    def utilization(self) -> float | None:
        """The least time this run's requests needed over the time they took (1.0: as fast as
        the limit allows); None when they all fitted in the first window."""
        if self.first_start is None or self.last_answer is None:
            return None
        least = self.fastest()
        if least <= 0:
            return None
        return min(1.0, least / (self.last_answer - self.first_start))

    def history(self) -> list[tuple[float, float]]:
        """Our answered requests still within the longest window that may count them."""
        self._forget(asyncio.get_running_loop().time())
        return list(self._done)

    # -- the slot ----------------------------------------------------------------------------
    @asynccontextmanager
    async def slot(self) -> AsyncIterator[float]:
        """Hold a place in the window for one request, from its start until its answer;
        yields the start's loop time (pass it to :meth:`observe`)."""
        started = await self.acquire()
        try:
            yield started
        finally:
            self.release(started)

    async def acquire(self) -> float:
        """Wait until a request may start: no pause, spacing kept, room in the window.
        Returns the start's loop time."""
        loop = asyncio.get_running_loop()
        async with self._gate:  # one waiter at a time, so requests leave in arrival order
            while True:
                wait = self._paused_until - loop.time()
                if wait > 0:
                    await asyncio.sleep(max(wait, _MIN_WAIT))
                    continue
                if not self.bursting():
                    await self._spacing().acquire()
                    if self._paused_until > loop.time():
                        continue
                if await self._window_has_room(loop.time()):
                    break
            now = loop.time()
            self._in_flight += 1
            self._starts.append(now)
            if self.first_start is None:
                self.first_start = now
                self._carried = [answer for _, answer in self._done]
            return now

    def release(self, started: float | None = None) -> None:
        """The request was answered (or abandoned): it counts in the window from now on."""
        now = asyncio.get_running_loop().time()
        self._in_flight -= 1
        if started is None or started not in self._refused:
            self._done.append((now if started is None else started, now))
        else:
            self._refused.discard(started)
        self._answered.set()

    def _spacing(self) -> AsyncLimiter:
        """The spacing limiter at the current rate; a new one when the rate moved."""
        rate = self.rate
        if self._spacer is None or abs(rate - self._spacer_rate) > self._spacer_rate * (
            _RETUNE_THRESHOLD
        ):
            self._spacer, self._spacer_rate = AsyncLimiter(1, 1 / rate), rate
            # The new limiter starts empty: hold the next start one new gap after the last
            # one, so that a worker released by the old limiter cannot double up with it.
            if self._starts:
                self._paused_until = max(self._paused_until, self._starts[-1] + 1 / rate)
        return self._spacer

    async def _window_has_room(self, now: float) -> bool:
        """True when a request may start now; otherwise waits for room and returns False."""
        self._forget(now)
        if not self._heard and self._in_flight:
            # The portal has not answered yet: its answer says what its window is.
            self._answered.clear()
            await self._answered.wait()
            return False
        limit = self.limit()
        # Our own requests alone never exceed the limit. When another client of the portal
        # is seen, its estimated share, rounded up, and one request more stay free: its
        # timing is not ours to smooth, and crowding it out would only hide its real use.
        # Bursting alone past the run's first windows, a hundredth of the window stays free:
        # a client that arrives finds room, its requests show in the count, and the pacer
        # leaves it its share (a window we kept full would refuse every one of its requests,
        # and we would never see it). A shorter job spends every window whole: leaving room
        # from the start would cost it a whole window whenever its requests are just over a
        # multiple of the window's budget.
        free = 0
        run_for = now - (self.first_start if self.first_start is not None else now)
        if self.bursting() and run_for >= _WHOLE_WINDOWS * limit.window:
            free = math.ceil(limit.requests / 100)
        if self._others >= 1:
            free = math.ceil(min(self._others, 0.9 * limit.requests) - 0.2) + 1
        cap = max(1, limit.cap - free)
        first = bisect_right(self._done, now - limit.window, key=_answer)
        if self._in_flight + len(self._done) - first < cap:
            return True
        if first < len(self._done):
            await asyncio.sleep(max(self._done[first][1] + limit.window - now, _MIN_WAIT))
        else:
            self._answered.clear()
            await self._answered.wait()
        return False

    def _forget(self, now: float) -> None:
        """Drop what no window in force or to come can count any more."""
        # A little more than a window: an answer counts back from its request's start.
        window = max(self.asked.window, self._portal.window if self._portal else 0.0)
        horizon = now - window * 1.5
        while self._done and self._done[0][1] <= horizon:
            self._done.popleft()
        while self._starts and self._starts[0] <= horizon:
            self._starts.popleft()

    # -- feedback ----------------------------------------------------------------------------
    def pause(self, seconds: float) -> None:
        """Hold every worker for ``seconds`` (after a 429) and halve the pace."""
        now = asyncio.get_running_loop().time()
        self._paused_until = max(self._paused_until, now + seconds)
        self._last_cut = self._last_change = now
        self._factor = max(_MIN_FRACTION, self._factor * 0.5)

    def observe(self, status: int | None, info: RateHeaders, started: float | None = None) -> None:
        """Feed back one answer: its status (None: no answer), its rate-limit headers, and
        the loop time its request started (None: taken as just now).

        Slowing down is immediate; speeding up after trouble is by steps, so that after a 429
        the pace climbs back instead of running straight into the next one.
        """
        now = asyncio.get_running_loop().time()
        if status is not None:
            self._heard = True  # any answer ends the one-at-a-time start
            self.last_answer = now
            if status == 429:
                self._forget_refused(started)
            else:
                self.accepted += 1
        contended = False
        limit = info.limit()
        if limit is None and info.max is not None and info.interval_ms is not None:
            self._warn_implausible(info)
        if limit is not None:
            self._portal = limit
            if info.remaining is not None:
                contended = self._track_others(limit, info.remaining, now, started)
        if status is not None and 500 <= status < 600:
            self._server_errors += 1
            if self._server_errors >= 3:  # a run of 5xx: HubSpot may be throttling
                self._slow_down(now, 0.7)
                self._server_errors = 0
        elif status is not None and status < 400:
            self._server_errors = 0
            if contended:
                # The window is full and someone else is in it: we may be crowding them out
                # (their refused requests do not show in the count), so yield some room.
                self._slow_down(now, _YIELD)
            elif self._factor < 1 and now - self._last_change >= self.limit().window / 2:
                self._last_change = now
                self._factor = min(1.0, self._factor + _RECOVERY_STEP)

    def _forget_refused(self, started: float | None) -> None:
        """A refused request does not count at the server: stop counting it as ours, or
        another client's use would look smaller than it is."""
        if started is None:
            if self._starts:
                self._starts.pop()
            return
        try:
            self._starts.remove(started)
        except ValueError:
            return
        self._refused.add(started)

    def _warn_implausible(self, info: RateHeaders) -> None:
        if not self._warned:
            self._warned = True
            _LOG.warning(
                "ignoring an implausible rate-limit header (%s requests per %s ms); pacing at %s",
                info.max,
                info.interval_ms,
                self.limit(),
            )

    def _slow_down(self, now: float, factor: float) -> None:
        """Cut the pace, at most once a window (one crowded window is one signal, not many)."""
        if now - self._last_cut >= self.limit().window:
            self._last_cut = self._last_change = now
            self._factor = max(_MIN_FRACTION, self._factor * factor)

    def _track_others(
        self, limit: Limit, remaining: int, now: float, started: float | None
    ) -> bool:
        """Estimate another client's use from the window's count. Our requests the server
        had *surely* counted when it answered started before this one, within the window;
        those it *may* have counted are every one in flight or answered since the window
        began. Someone else is there only when the count exceeds all that may be ours (no
        false alarm from our own timing); then the share left to them is the most it can
        be. Returns True when the window is full and another client is in it."""
        self._forget(now)
        started = now if started is None else started
        sure = bisect_right(self._starts, started) - bisect_right(self._starts, now - limit.window)
        possible = (
            self._in_flight
            + len(self._done)
            - bisect_right(self._done, started - limit.window, key=_answer)
        )
        used = limit.requests - remaining
        seen = max(0.0, used - sure) if used - possible >= 1 else 0.0
        if self._watching_since is None:
            self._watching_since = now
        # In our first window we have seen only part of one of theirs: a client that started
        # with us has filled just that part, so scale up (too slow at first beats a 429).
        watched = max(now - self._watching_since, limit.window * 0.1)
        sample = seen * limit.window / watched if watched < limit.window else seen
        # Rise at once (a 429 costs more than a slower window); fall by halves, which is as
        # fast as their requests leave the window when answers come a few a second.
        self._others = sample if sample >= self._others else (self._others + sample) / 2
        return remaining == 0 and seen >= 2  # one is within our own timing noise


def _answer(request: tuple[float, float]) -> float:
    return request[1]
