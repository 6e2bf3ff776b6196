"""The pacer on a virtual clock: the rolling-window property, pauses, and adaptation.

Every ``asyncio.sleep`` here runs on :class:`tests.conftest.VirtualClockLoop`: the loop's clock
jumps to the next timer, so a test "waits" minutes of latency and windows in milliseconds.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from bulkleads.hubspot.limits import Limit, RateHeaders, retry_after_seconds
from bulkleads.sandbox.limits import RollingWindow
from bulkleads.send.pacing import Pacer
from tests.conftest import run_virtual


async def _drive(
    pacer: Pacer, requests: int, workers: int, latency: float = 0.4, seed: int = 1
) -> list[float]:
    """Workers send ``requests`` with random latency; returns each request's start time."""
    rng = random.Random(seed)
    starts: list[float] = []
    loop = asyncio.get_running_loop()
    remaining = iter(range(requests))

    async def worker() -> None:
        for _ in remaining:
            async with pacer.slot():
                starts.append(loop.time())
                await asyncio.sleep(rng.uniform(0.0, latency))

    await asyncio.gather(*(worker() for _ in range(workers)))
    return sorted(starts)


def _max_in_window(starts: list[float], window: float) -> int:
    best, j = 0, 0
    for i, t in enumerate(starts):
        while starts[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


@pytest.mark.parametrize(("limit", "window"), [(10, 1.0), (100, 10.0), (3, 1.0)])
def test_never_more_than_limit_in_any_rolling_window(limit: int, window: float) -> None:
    """Whatever the latency (here up to 0.4 s), no rolling window holds more than ``limit``."""
    starts = run_virtual(_drive(Pacer(limit, window), 300, workers=4))
    assert _max_in_window(starts, window) <= limit


def test_a_per_second_policy_is_spaced_within_3_percent_of_the_limit() -> None:
    """At 10 per 1 s (Leads v1's policy) requests are spread evenly: within 3 % of the
    limit, never above it."""
    starts = run_virtual(_drive(Pacer(10, 1.0), 300, workers=4, latency=0.01))
    achieved = len(starts) / (starts[-1] - starts[0] + 1 / 10)
    assert 0.97 * 10 <= achieved <= 10


def test_an_empty_window_of_ours_is_spent_at_once() -> None:
    """At 100 per 10 s, alone: 300 quick requests take the two windows a rolling window
    needs at the least (each window's budget at once), not the thirty seconds of spacing."""
    starts = run_virtual(_drive(Pacer(100, 10.0), 300, workers=4, latency=0.01))
    assert _max_in_window(starts, 10.0) <= 100
    assert starts[-1] - starts[0] <= 20 * 1.1
    assert starts[98] - starts[0] < 1.0  # the first window's budget went at once


def test_answers_not_starts_hold_the_window() -> None:
    """With slow answers, the next window's requests wait for earlier ones to come back."""

    async def scenario() -> list[float]:
        pacer = Pacer(2, 1.0, margin=0)
        loop = asyncio.get_running_loop()
        starts: list[float] = []

        async def one(latency: float) -> None:
            async with pacer.slot():
                starts.append(loop.time())
                await asyncio.sleep(latency)

        await asyncio.gather(one(3.0), one(0.0), one(0.0))
        return starts

    starts = run_virtual(scenario())
    # The first request is answered at t=3, so the third may start only a window later.
    assert starts[2] >= starts[0] + 0.5
    assert starts[2] - starts[1] >= 0.5


def test_pause_holds_every_worker_and_slows_down() -> None:
    """After pause(5) nobody starts for 5 s, and the pace is halved."""

    async def scenario() -> tuple[float, float, float]:
        pacer = Pacer(10, 1.0)
        loop = asyncio.get_running_loop()
        async with pacer.slot():
            pass
        before = pacer.rate
        pacer.pause(5)
        paused_at = loop.time()
        async with pacer.slot():
            started = loop.time()
        return started - paused_at, before, pacer.rate

    waited, before, after = run_virtual(scenario())
    assert waited >= 5
    assert after == pytest.approx(before / 2)


def _pace_after(answers: int, headers: dict[str, str]) -> float:
    """The pacer's rate after ``answers`` successes carrying ``headers`` (configured 10/s)."""

    async def scenario() -> float:
        pacer = Pacer(10, 1.0)
        for _ in range(answers):
            pacer.observe(204, RateHeaders.parse(headers))
        return pacer.rate

    return run_virtual(scenario())


def test_server_limit_lowers_the_ceiling() -> None:
    """X-HubSpot-RateLimit-Max 5 per 1000 ms beats a configured 10 per second."""
    headers = {"X-HubSpot-RateLimit-Max": "5", "X-HubSpot-RateLimit-Interval-Milliseconds": "1000"}
    assert _pace_after(3, headers) <= 5


def test_another_client_using_the_portal_gets_its_share() -> None:
    """Remaining far below our own use means another client: the pace drops toward the rest."""
    headers = {
        "X-HubSpot-RateLimit-Max": "10",
        "X-HubSpot-RateLimit-Remaining": "5",
        "X-HubSpot-RateLimit-Interval-Milliseconds": "1000",
    }
    assert _pace_after(20, headers) <= 6


@pytest.mark.parametrize(("made", "kept"), [(True, True), (False, False)])
def test_a_request_made_before_the_run_is_not_another_client(made: bool, kept: bool) -> None:
    """The CRM property list is read before the sender starts: told of it, the pacer counts
    the portal's tally of it as its own and keeps its pace; untold, it mistakes it for another
    client and yields."""

    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        before = loop.time()
        await asyncio.sleep(0.05)
        pacer = Pacer(100, 10.0, made=[before] if made else [])
        for used in range(2, 12):  # each answer: the property list plus our requests so far
            async with pacer.slot():
                await asyncio.sleep(0.02)
            headers = RateHeaders(max=100, remaining=100 - used, interval_ms=10_000)
            pacer.observe(204, headers)
        return pacer.rate

    rate = run_virtual(scenario())
    assert (rate >= 100 / 10 * 0.98) is kept


def test_requests_made_before_the_run_count_in_the_window() -> None:
    """A window already full of the run's own earlier requests holds the first start until
    the oldest of them leaves it."""

    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        made = [loop.time() + i * 0.01 for i in range(10)]
        await asyncio.sleep(0.2)
        pacer = Pacer(10, 1.0, made=made)
        async with pacer.slot():
            return loop.time() - made[0]

    assert run_virtual(scenario()) >= 1.0


def test_a_burst_of_5xx_slows_down() -> None:
    """Three server errors in a row cut the pace (HubSpot sometimes throttles with a 500)."""

    async def scenario() -> tuple[float, float]:
        pacer = Pacer(10, 1.0)
        before = pacer.rate
        for _ in range(3):
            pacer.observe(500, RateHeaders())
        return before, pacer.rate

    before, after = run_virtual(scenario())
    assert after < before


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2", 2.0),
        ("0.5", 0.5),
        ("2000", 2.0),
        (None, 10.0),
        ("-3", 10.0),
        ("1e12", 10.0),
        ("soon", 10.0),
        ("nan", 10.0),
        ("Sat, 28 Nov 2026 10:00:05 GMT", 5.0),
    ],
)
def test_retry_after_is_honoured_only_when_plausible(value: str | None, expected: float) -> None:
    """Seconds, milliseconds and HTTP dates are read; garbage falls back to the interval."""
    now = datetime(2026, 11, 28, 10, 0, 0, tzinfo=UTC)
    assert retry_after_seconds(value, interval_ms=10_000, now=now) == pytest.approx(expected)
    assert retry_after_seconds("garbage") == 1.0


def test_garbage_rate_headers_are_ignored() -> None:
    """Missing, negative or non-numeric headers read as unknown, never as zero."""
    info = RateHeaders.parse(
        {
            "X-HubSpot-RateLimit-Max": "ten",
            "X-HubSpot-RateLimit-Remaining": "-1",
            "X-HubSpot-RateLimit-Daily-Remaining": "7",
        }
    )
    assert info == RateHeaders(daily_remaining=7)


@dataclass
class PortalRun:
    """What a run against an exact rolling window gave (virtual time)."""

    ours: list[float] = field(default_factory=list)  # loop times our accepted requests left
    ours_429: int = 0
    other: int = 0
    other_429: int = 0
    elapsed: float = 0.0

    def accepted_between(self, start: float, end: float) -> int:
        return sum(1 for t in self.ours if start <= t < end)


async def _run_on_portal(
    pacer: Pacer,
    server: RollingWindow,
    requests: int,
    *,
    other_rate: float = 0.0,
    other_from: float = 0.0,
    other_until: float = float("inf"),
) -> PortalRun:
    """Four workers send ``requests`` through ``pacer`` to ``server``, each answer carrying
    HubSpot's rate headers; another client sends ``other_rate`` a second from ``other_from``
    to ``other_until`` (loop times)."""
    loop = asyncio.get_running_loop()
    rng = random.Random(7)
    result = PortalRun()
    finished = asyncio.Event()
    interval_ms = int(server.window * 1000)

    async def other() -> None:
        await asyncio.sleep(max(0.0, other_from - loop.time()))
        started, sent = loop.time(), 0
        while not finished.is_set() and loop.time() < other_until:
            if server.try_accept():
                result.other += 1
            else:
                result.other_429 += 1
            sent += 1
            await asyncio.sleep(max(0.0, started + sent / other_rate - loop.time()))

    left = iter(range(requests))

    async def worker() -> None:
        for _ in left:
            while True:
                async with pacer.slot() as started:
                    await asyncio.sleep(rng.uniform(0.001, 0.005))
                    accepted = server.try_accept()
                    headers = RateHeaders(
                        max=server.limit, remaining=server.remaining(), interval_ms=interval_ms
                    )
                    await asyncio.sleep(rng.uniform(0.001, 0.005))
                    pacer.observe(204 if accepted else 429, headers, started)
                if accepted:
                    result.ours.append(started)
                    break
                result.ours_429 += 1
                pacer.pause(server.window)

    helper = asyncio.create_task(other()) if other_rate else None
    start = loop.time()
    await asyncio.gather(*(worker() for _ in range(4)))
    result.elapsed = loop.time() - start
    finished.set()
    if helper:
        await helper
    return result


async def _share_portal(limit: int, window: float, other_rate: float, requests: int):
    """Our pacer and a steady other client against an exact rolling window (virtual time).
    Returns (our utilization of what the other left, our 429s, the other's 429s)."""
    loop = asyncio.get_running_loop()
    server = RollingWindow(limit, window, loop.time)
    run = await _run_on_portal(Pacer(limit, window), server, requests, other_rate=other_rate)
    left_for_us = limit / window - min(other_rate, run.other / run.elapsed)
    return len(run.ours) / (run.elapsed * left_for_us), run.ours_429, run.other_429


def test_alone_at_the_limit_without_a_429() -> None:
    """Alone on the portal: within 3 % of the limit, never refused."""
    utilization, ours, _ = run_virtual(_share_portal(100, 10.0, 0, 300))
    assert utilization >= 0.97 and ours == 0


def test_sharing_a_portal_without_tripping_either_client() -> None:
    """Another client uses half of 100 per 10 s: we take most of the rest, nobody gets a 429."""
    utilization, ours, theirs = run_virtual(_share_portal(100, 10.0, 5, 150))
    assert utilization >= 0.85
    assert ours == 0 and theirs == 0


@pytest.mark.parametrize("remembered", [True, False])
def test_a_window_full_of_our_earlier_requests_is_ours(remembered: bool) -> None:
    """A run that starts while the run before it still fills the portal's window (a dry run,
    then the run): told of those requests, the pacer counts them as its own, waits for them
    to leave and then spends whole windows, with no 429; untold, it takes them for another
    client and crawls."""

    async def scenario() -> tuple[PortalRun, float]:
        loop = asyncio.get_running_loop()
        server = RollingWindow(100, 10.0, loop.time)
        before: list[tuple[float, float]] = []
        for _ in range(100):  # the previous run: a whole window's budget, just spent
            start = loop.time()
            assert server.try_accept()
            await asyncio.sleep(0.004)
            before.append((start, loop.time()))
        made = before if remembered else []
        pacer = Pacer(100, 10.0, made=made, explicit=False, portal=Limit(100, 10.0))
        run = await _run_on_portal(pacer, server, 300)
        return run, pacer.others

    run, others = run_virtual(scenario())
    if remembered:
        assert run.ours_429 == 0
        assert others == 0
        # 300 requests behind a full window: three more windows at the least.
        assert run.elapsed <= 30 * 1.1
    else:
        assert run.elapsed > 30 * 1.5


@pytest.mark.parametrize("explicit", [True, False])
def test_a_portal_window_ten_times_the_configured_one(explicit: bool) -> None:
    """Configured 10 per 1 s (Leads v1's default, or --rate 10), the portal counts 100 per
    10 s: our own requests are counted over the portal's window and the two compared as
    rates, so ours are never taken for another client's, and the run takes the two windows
    300 requests need at the least."""

    async def scenario() -> tuple[PortalRun, Pacer]:
        loop = asyncio.get_running_loop()
        server = RollingWindow(100, 10.0, loop.time)
        pacer = Pacer(10, 1.0, explicit=explicit)
        return await _run_on_portal(pacer, server, 300), pacer

    run, pacer = run_virtual(scenario())
    assert run.ours_429 == 0
    assert pacer.limit() == Limit(100, 10.0)
    assert pacer.others == 0
    assert run.elapsed <= 20 * 1.1 + 1


def test_an_explicit_pace_below_the_portal_is_kept_as_a_rate() -> None:
    """--rate 5 per 1 s against a portal of 100 per 10 s: 50 per 10 s, not more."""

    async def scenario() -> PortalRun:
        loop = asyncio.get_running_loop()
        server = RollingWindow(100, 10.0, loop.time)
        return await _run_on_portal(Pacer(5, 1.0), server, 150)

    run = run_virtual(scenario())
    assert _max_in_window(run.ours, 10.0) <= 50
    assert run.ours_429 == 0


def test_another_client_arriving_and_leaving() -> None:
    """Another client uses half of 100 per 10 s from t=150 s to t=200 s, into a run that
    has spent whole windows for its first ten: it finds room, we leave it its share, and
    within two windows of its going we are back at >= 0.95 of the limit."""

    async def scenario() -> PortalRun:
        loop = asyncio.get_running_loop()
        server = RollingWindow(100, 10.0, loop.time)
        return await _run_on_portal(
            Pacer(100, 10.0), server, 2600, other_rate=5, other_from=150, other_until=200
        )

    run = run_virtual(scenario())
    # Its first request takes the room we leave free; one of ours may race its second into
    # the slot that frees next, before its answer shows it to us: one 429 at most.
    assert run.ours_429 <= 1
    # It gets most of what it asks for (5 a second for 50 s) once it has been seen.
    assert run.other >= 0.8 * 5 * 50
    # While it is there we take at least 0.85 of what it leaves.
    assert run.accepted_between(170, 200) >= 0.85 * (30 * 10 - 5 * 30)
    # Its requests leave the window by t=210; from two windows after its going, we take at
    # least 0.95 of the limit.
    assert run.accepted_between(220, 260) >= 0.95 * 4 * 100


def test_implausible_rate_headers_are_ignored() -> None:
    """An interval of an hour (or a max of zero) is not believed: the pace stays as asked."""

    async def scenario() -> Limit:
        pacer = Pacer(10, 1.0)
        pacer.observe(204, RateHeaders(max=100, remaining=99, interval_ms=3_600_000))
        pacer.observe(204, RateHeaders(max=0, remaining=0, interval_ms=10_000))
        return pacer.limit()

    assert run_virtual(scenario()) == Limit(10, 1.0)


def test_limit_minimum() -> None:
    """A rolling window admits its budget at once: 200 requests at 100 per 10 s take one
    window at the least, 201 take two."""
    limit = Limit(100, 10.0)
    assert limit.minimum_seconds(200) == 10.0
    assert limit.minimum_seconds(201) == 20.0
    assert limit.minimum_seconds(0) == 0.0


@pytest.mark.parametrize(("remembered", "requests"), [(False, 300), (True, 300), (False, 50)])
def test_the_pace_reached_is_measured_against_the_fastest_possible(
    remembered: bool, requests: int
) -> None:
    """The done line's pace: the least time the run's requests needed at the limit (behind
    the earlier requests it found in the window) over the time they took; a run that fits
    in its first window has none to report."""

    async def scenario() -> tuple[float | None, float]:
        loop = asyncio.get_running_loop()
        server = RollingWindow(100, 10.0, loop.time)
        made = []
        if remembered:
            for _ in range(60):
                start = loop.time()
                server.try_accept()
                await asyncio.sleep(0.01)
                made.append((start, loop.time()))
        pacer = Pacer(100, 10.0, made=made, portal=Limit(100, 10.0))
        await _run_on_portal(pacer, server, requests)
        return pacer.utilization(), pacer.fastest()

    utilization, fastest = run_virtual(scenario())
    if requests <= 100 and not remembered:
        assert utilization is None and fastest == 0
    else:
        assert utilization is not None and utilization >= 0.95
        # 300 alone: two windows; behind 60 of ours: the first 40 at once, then three more.
        assert fastest == pytest.approx(30.0 if remembered else 20.0, abs=1.0)


def test_the_pace_of_a_spaced_per_second_run_is_measured_against_spacing() -> None:
    """At a per-second policy requests are spaced, so the fastest a run can be is one
    request every tenth of a second at 10 per 1 s: a run of 60 reaches >= 0.95 of that."""

    async def scenario() -> float | None:
        loop = asyncio.get_running_loop()
        server = RollingWindow(10, 1.0, loop.time)
        pacer = Pacer(10, 1.0, portal=Limit(10, 1.0))
        await _run_on_portal(pacer, server, 60)
        return pacer.utilization()

    utilization = run_virtual(scenario())
    assert utilization is not None and utilization >= 0.95
