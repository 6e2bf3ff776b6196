"""The pacer on a virtual clock: the rolling-window property, pauses, and adaptation.

Every ``asyncio.sleep`` here runs on :class:`tests.conftest.VirtualClockLoop`: the loop's clock
jumps to the next timer, so a test "waits" minutes of latency and windows in milliseconds.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import pytest

from bulkleads.pacing import Pacer, RateHeaders, retry_after_seconds

from .conftest import run_virtual


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


@pytest.mark.parametrize(("limit", "window"), [(10, 1.0), (100, 10.0)])
def test_uses_the_budget_when_answers_are_quick(limit: int, window: float) -> None:
    """With quick answers the pace stays within 3 % of the limit, never above it."""
    starts = run_virtual(_drive(Pacer(limit, window), 300, workers=4, latency=0.01))
    achieved = len(starts) / (starts[-1] - starts[0] + window / limit)
    assert 0.97 * limit / window <= achieved <= limit / window


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


async def _share_portal(limit: int, window: float, other_rate: float, requests: int):
    """Our pacer and a steady other client against an exact rolling window (virtual time).
    Returns (our utilization of what the other left, our 429s, the other's 429s)."""
    from bulkleads.pacing import RateHeaders as Headers
    from bulkleads.sandbox.limits import RollingWindow

    loop = asyncio.get_running_loop()
    rng = random.Random(7)
    server = RollingWindow(limit, window, loop.time)
    pacer = Pacer(limit, window)
    counts = {"ours": 0, "ours_429": 0, "other": 0, "other_429": 0}
    finished = asyncio.Event()

    async def other() -> None:
        started, sent = loop.time(), 0
        while not finished.is_set():
            counts["other" if server.try_accept() else "other_429"] += 1
            sent += 1
            await asyncio.sleep(max(0.0, started + sent / other_rate - loop.time()))

    left = iter(range(requests))

    async def worker() -> None:
        for _ in left:
            while True:
                async with pacer.slot():
                    await asyncio.sleep(rng.uniform(0.001, 0.005))
                    accepted = server.try_accept()
                    headers = Headers(
                        max=limit, remaining=server.remaining(), interval_ms=int(window * 1000)
                    )
                    await asyncio.sleep(rng.uniform(0.001, 0.005))
                    pacer.observe(204 if accepted else 429, headers)
                if accepted:
                    counts["ours"] += 1
                    break
                counts["ours_429"] += 1
                pacer.pause(window)

    helper = asyncio.create_task(other()) if other_rate else None
    start = loop.time()
    await asyncio.gather(*(worker() for _ in range(4)))
    elapsed = loop.time() - start
    finished.set()
    if helper:
        await helper
    left_for_us = limit / window - min(other_rate, counts["other"] / elapsed)
    return counts["ours"] / (elapsed * left_for_us), counts["ours_429"], counts["other_429"]


def test_alone_at_the_limit_without_a_429() -> None:
    """Alone on the portal: within 3 % of the limit, never refused."""
    utilization, ours, _ = run_virtual(_share_portal(100, 10.0, 0, 300))
    assert utilization >= 0.97 and ours == 0


def test_sharing_a_portal_without_tripping_either_client() -> None:
    """Another client uses half of 100 per 10 s: we take most of the rest, nobody gets a 429."""
    utilization, ours, theirs = run_virtual(_share_portal(100, 10.0, 5, 150))
    assert utilization >= 0.85
    assert ours == 0 and theirs == 0
