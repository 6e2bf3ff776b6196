"""What each answer does to the pacer, one rule at a time on a virtual clock: runs of 5xx,
the climb back, another client's share and the room it is left, the window's edges, what is
forgotten, the one warning about a header that is not believed, and the pace measured.

The pacer's overall behaviour (a real run's pace, two clients sharing a portal) is in
``test_pacing.py``; here each rule is pinned at its boundaries, where a flipped comparison or
an off-by-one would change what the pacer does."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from itertools import pairwise
from typing import Any

import pytest

from bulkleads.hubspot.limits import Limit, RateHeaders
from bulkleads.send.pacing import Pacer
from tests.conftest import run_virtual

OK = RateHeaders()


def on_clock(scenario: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run ``scenario`` on a virtual clock that reads exactly 0 when it begins."""

    async def from_zero() -> Any:
        asyncio.get_running_loop().now = 0.0  # type: ignore[attr-defined]
        return await scenario()

    return run_virtual(from_zero())


async def at(moment: float) -> None:
    """Set the virtual clock to ``moment`` exactly (a turn of the loop moves it a microsecond,
    and the rules tested here are at their exact boundaries)."""
    loop = asyncio.get_running_loop()
    assert moment >= loop.time()
    loop.now = moment  # type: ignore[attr-defined]


def headers(limit: int, remaining: int, window_ms: int = 10_000) -> RateHeaders:
    return RateHeaders(max=limit, remaining=remaining, interval_ms=window_ms)


async def started_before_blocked(pacer: Pacer, wait: float = 120) -> int:
    """Requests that start (and stay in flight) before one waits longer than ``wait``."""
    count = 0
    while True:
        try:
            await asyncio.wait_for(pacer.acquire(), wait)
        except TimeoutError:
            return count
        count += 1


# -- runs of 5xx and the climb back -------------------------------------------------------------
def test_three_5xx_in_a_row_cut_the_pace_to_seven_tenths_and_two_do_not() -> None:
    async def scenario() -> tuple[float, float, float]:
        pacer = Pacer(10, 1.0, margin=0)
        pacer.observe(503, OK)
        pacer.observe(500, OK)
        after_two = pacer.rate
        pacer.observe(502, OK)
        return pacer.asked.rate, after_two, pacer.rate

    full, after_two, after_three = on_clock(scenario)
    assert after_two == full
    assert after_three == pytest.approx(0.7 * full)


def test_a_success_ends_a_run_of_5xx_and_a_refusal_does_not() -> None:
    """2 x 5xx, a 200, 2 x 5xx: no run of three. 2 x 5xx, a 400, a 5xx: a run of three (a
    refused value says nothing about the portal's load)."""

    async def scenario() -> tuple[float, float]:
        broken = Pacer(10, 1.0, margin=0)
        for status in (500, 500, 200, 500, 500):
            broken.observe(status, OK)
        refused = Pacer(10, 1.0, margin=0)
        for status in (500, 500, 400, 500):
            refused.observe(status, OK)
        return broken.rate, refused.rate

    broken, refused = on_clock(scenario)
    assert broken == pytest.approx(10)
    assert refused == pytest.approx(7)


def test_a_run_of_5xx_counts_afresh_after_each_cut() -> None:
    """After a cut, the next cut needs three more 5xx, not two (a window later)."""

    async def scenario() -> tuple[float, float]:
        pacer = Pacer(10, 1.0, margin=0)
        for _ in range(3):
            pacer.observe(500, OK)
        once = pacer.rate
        await at(5)
        pacer.observe(500, OK)
        pacer.observe(500, OK)
        return once, pacer.rate

    once, later = on_clock(scenario)
    assert once == pytest.approx(7)
    assert later == pytest.approx(7)


def test_the_pace_climbs_back_a_quarter_every_half_window_and_never_past_the_limit() -> None:
    async def scenario() -> list[float]:
        pacer = Pacer(100, 10, margin=0, portal=Limit(100, 10))
        for _ in range(3):
            pacer.observe(500, OK)  # cut to 0.7 at t=0
        rates = [pacer.rate]
        await at(4.5)
        pacer.observe(200, OK)  # before half a window: no step
        rates.append(pacer.rate)
        await at(5)
        pacer.observe(200, OK)  # exactly half a window: a step
        rates.append(pacer.rate)
        await at(10)
        pacer.observe(200, OK)
        rates.append(pacer.rate)
        return rates

    assert on_clock(scenario) == pytest.approx([7.0, 7.0, 9.5, 10.0])


def test_a_second_cut_waits_a_whole_window() -> None:
    async def scenario() -> list[float]:
        pacer = Pacer(100, 10, margin=0, portal=Limit(100, 10))
        rates = []
        for moment in (0, 9.5, 10):
            await at(moment)
            for _ in range(3):
                pacer.observe(500, OK)
            rates.append(pacer.rate)
        return rates

    assert on_clock(scenario) == pytest.approx([7.0, 7.0, 4.9])


# -- another client: its share, the room it is left, and the full window -----------------------
def test_another_clients_share_rises_at_once_and_falls_by_halves() -> None:
    """Watched a whole window, the count says 50 of theirs, then 10: 50, then 30."""

    async def scenario() -> list[float]:
        pacer = Pacer(100, 10, explicit=False)
        pacer.observe(200, headers(100, 100))  # starts watching at t=0
        await at(10)
        pacer.observe(200, headers(100, 50))
        first = pacer.others
        await at(20)
        pacer.observe(200, headers(100, 90))
        return [first, pacer.others]

    assert on_clock(scenario) == pytest.approx([50, 30])


def test_what_is_seen_in_the_first_window_is_scaled_to_a_whole_one() -> None:
    """Watching from t=5, 2 of theirs seen at t=7 (a fifth of the window): 10 a window."""

    async def scenario() -> float:
        pacer = Pacer(100, 10, explicit=False)
        await at(5)
        pacer.observe(200, headers(100, 100))
        await at(7)
        pacer.observe(200, headers(100, 98))
        return pacer.others

    assert on_clock(scenario) == pytest.approx(10)


def test_our_requests_started_after_the_answered_one_may_not_be_in_its_count() -> None:
    """Ours started at t=0 and t=1, both in flight; the answer to the first says 3 used: of
    ours, only the first is surely counted, so 2 are someone else's (20 a window at first)."""

    async def scenario() -> float:
        pacer = Pacer(100, 10, explicit=False, portal=Limit(100, 10))
        first = await pacer.acquire()
        await at(1)
        await pacer.acquire()
        await at(2)
        pacer.observe(200, headers(100, 97), first)
        return pacer.others

    assert on_clock(scenario) == pytest.approx(20)


async def seen_exactly_one(pacer: Pacer) -> None:
    """Another client's share of exactly one request a window, watched a whole window."""
    pacer.observe(200, headers(100, 100))
    await at(10)
    pacer.observe(200, headers(100, 99))
    assert pacer.others == 1


def test_one_request_of_another_client_ends_the_burst_and_keeps_two_places_free() -> None:
    """Its share rounded up and one more: 98 of 100 places are ours."""

    async def scenario() -> tuple[bool, int]:
        pacer = Pacer(100, 10, explicit=False, margin=0)
        await seen_exactly_one(pacer)
        return pacer.bursting(), await started_before_blocked(pacer)

    bursting, started = on_clock(scenario)
    assert not bursting
    assert started == 98


@pytest.mark.parametrize(("limit", "theirs", "ours"), [(100, 95, 9), (5, 4, 1)])
def test_a_client_using_most_of_the_window_leaves_us_a_tenth_and_at_least_one(
    limit: int, theirs: int, ours: int
) -> None:
    async def scenario() -> int:
        pacer = Pacer(limit, 10, explicit=False, margin=0)
        pacer.observe(200, headers(limit, limit))
        await at(10)
        pacer.observe(200, headers(limit, limit - theirs))
        assert pacer.others == theirs
        return await started_before_blocked(pacer, wait=600)

    assert on_clock(scenario) == ours


@pytest.mark.parametrize(("ours", "remaining", "factor"), [(8, 0, 0.9), (9, 0, 1.0), (7, 1, 1.0)])
def test_a_full_window_shared_with_another_client_yields_a_tenth(
    ours: int, remaining: int, factor: float
) -> None:
    """At 10 per 10 s, ``ours`` answered and the count says ``remaining``: full (0 left) with
    2 of theirs in it, the pace drops to 0.9 of what their share leaves; one of theirs is
    within our own timing's noise, and a window with room left is no crowding."""

    async def scenario() -> tuple[float, float]:
        pacer = Pacer(10, 10, explicit=False, margin=0, portal=Limit(10, 10))
        pacer.observe(200, headers(10, 10))  # watching from t=0
        await at(10)
        started = [await pacer.acquire() for _ in range(ours)]
        for moment in started:
            pacer.release(moment)
        await at(11)
        pacer.observe(200, headers(10, remaining), started[-1])
        return pacer.rate, pacer.others

    rate, others = on_clock(scenario)
    assert others == 10 - remaining - ours
    assert rate / (1 - (others + 1) / 10) == pytest.approx(factor)


# -- the burst's room -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("start", "windows", "limit", "at_once"),
    [
        (100, 0, 100, 100),  # a run that starts late still spends its first windows whole
        (0, 10, 100, 99),  # ten windows in: a hundredth of the window stays free
        (0, 10, 101, 99),  # rounded up: 2 of 101
    ],
)
def test_a_long_burst_leaves_a_newcomer_a_hundredth_of_the_window(
    start: float, windows: int, limit: int, at_once: int
) -> None:
    async def scenario() -> int:
        pacer = Pacer(limit, 10, explicit=False, portal=Limit(limit, 10))
        await at(start)
        first = await pacer.acquire()
        pacer.observe(200, OK, first)
        pacer.release(first)
        await at(start + max(windows * 10, 10))
        return await started_before_blocked(pacer, wait=1)

    assert on_clock(scenario) == at_once


def test_an_answer_does_not_free_a_place_before_the_window_passes() -> None:
    """At 2 per 10 s, a third request waiting while two are in flight still waits for the
    first's answer to leave the window, not just for the answer."""

    async def scenario() -> float:
        pacer = Pacer(2, 10, portal=Limit(2, 10))
        first = await pacer.acquire()
        await pacer.acquire()
        third = asyncio.ensure_future(pacer.acquire())
        await asyncio.sleep(0)  # the third is waiting
        await at(1)
        pacer.release(first)
        return await asyncio.wait_for(third, 60)

    assert on_clock(scenario) == pytest.approx(11)


def test_a_pause_ending_now_holds_nobody() -> None:
    async def scenario() -> float:
        pacer = Pacer(100, 10, portal=Limit(100, 10))
        pacer.pause(5)
        await at(5)
        return await pacer.acquire()

    assert on_clock(scenario) == 5


def test_a_changed_pace_retunes_the_spacing() -> None:
    """Spaced at 10/s, then a 429 halves the pace: the next gaps are 0.2 s."""

    async def scenario() -> list[float]:
        pacer = Pacer(10, 1.0, margin=0)
        starts = []
        for _ in range(3):
            started = await pacer.acquire()
            pacer.observe(200, OK, started)
            pacer.release(started)
            starts.append(started)
        pacer.pause(0)
        for _ in range(3):
            started = await pacer.acquire()
            pacer.release(started)
            starts.append(started)
        return [b - a for a, b in pairwise(starts)]

    gaps = on_clock(scenario)
    assert gaps[:2] == pytest.approx([0.1, 0.1], abs=1e-4)
    assert gaps[-2:] == pytest.approx([0.2, 0.2], abs=1e-4)


# -- what is kept -------------------------------------------------------------------------------
def test_history_keeps_each_requests_start_and_answer() -> None:
    async def scenario() -> list[tuple[float, float]]:
        pacer = Pacer(100, 10, portal=Limit(100, 10))
        first = await pacer.acquire()
        await at(3)
        pacer.release(first)
        await pacer.acquire()
        await at(4)
        pacer.release()  # start not given: taken as the answer's time
        return pacer.history()

    assert on_clock(scenario) == [(0, 3), (4, 4)]


def test_a_refused_request_leaves_history_but_its_twin_started_with_it_does_not() -> None:
    """Two requests started at the same instant, the first refused: only the second counts."""

    async def scenario() -> list[tuple[float, float]]:
        pacer = Pacer(100, 10, portal=Limit(100, 10))
        a = await pacer.acquire()
        b = await pacer.acquire()
        assert a == b
        await at(1)
        pacer.observe(429, OK, a)
        pacer.release(a)
        pacer.release(b)
        return pacer.history()

    assert on_clock(scenario) == [(0, 1)]


def test_earlier_requests_are_kept_in_answer_order() -> None:
    async def scenario() -> list[tuple[float, float]]:
        await at(20)
        pacer = Pacer(100, 10, made=[(10.0, 15.0), (11.0, 13.0), 14.0])
        return pacer.history()

    assert on_clock(scenario) == [(11, 13), (14, 14), (10, 15)]


@pytest.mark.parametrize(
    ("window", "now", "kept"), [(10, 16, []), (10, 15.9, [(0, 1)]), (0.5, 1.8, [])]
)
def test_an_answer_is_forgotten_a_window_and_a_half_after(
    window: float, now: float, kept: list[tuple[float, float]]
) -> None:
    """Answered at t=1: kept until 1.5 windows later (never less than a second's 1.5)."""

    async def scenario() -> list[tuple[float, float]]:
        pacer = Pacer(10, window, made=[(0.0, 1.0)])
        await at(now)
        return pacer.history()

    assert on_clock(scenario) == kept


# -- what a pacer is built with, and its one warning ---------------------------------------------
def test_a_pacer_is_built_with_what_it_was_given() -> None:
    async def scenario() -> tuple[Limit, Limit, Limit]:
        return (
            Pacer(10).limit(),
            Pacer(0.5, 1.0).limit(),
            Pacer(100, 10, explicit=False, portal=Limit(190, 10)).limit(),
        )

    assert on_clock(scenario) == (Limit(10, 1.0), Limit(0.5, 1.0), Limit(190, 10))
    with pytest.raises(ValueError, match=r"^limit and window must be positive$"):
        Pacer(0, 1.0)


@pytest.mark.parametrize(
    ("info", "warned"),
    [
        (RateHeaders(max=100, remaining=99, interval_ms=10_000), False),
        (RateHeaders(max=100, remaining=99), False),
        (RateHeaders(remaining=99, interval_ms=10_000), False),
        (RateHeaders(max=100, remaining=99, interval_ms=3_600_000), True),
    ],
)
def test_one_warning_for_an_implausible_header(
    info: RateHeaders, warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        pacer = Pacer(10, 1.0)
        pacer.observe(200, info)
        pacer.observe(200, info)

    with caplog.at_level(logging.WARNING, logger="bulkleads.send.pacing"):
        on_clock(scenario)
    said = [r.getMessage() for r in caplog.records]
    if warned:
        assert said == [
            "ignoring an implausible rate-limit header (100 requests per 3600000 ms); "
            "pacing at 10 per 1 s"
        ]
    else:
        assert said == []


# -- the pace measured ------------------------------------------------------------------------
def test_the_fastest_possible_is_nothing_before_an_answer() -> None:
    async def scenario() -> tuple[float, float, float]:
        spaced = Pacer(10, 1.0)
        burst = Pacer(100, 10, portal=Limit(100, 10))
        before = spaced.fastest()
        await spaced.acquire()
        await burst.acquire()
        return before, spaced.fastest(), burst.fastest()

    assert on_clock(scenario) == (0.0, 0.0, 0.0)


def test_the_fastest_possible_spaces_a_per_second_policy() -> None:
    async def scenario() -> float:
        pacer = Pacer(10, 1.0)
        await pacer.acquire()
        for _ in range(5):
            pacer.observe(200, OK)
        return pacer.fastest()

    assert on_clock(scenario) == pytest.approx(0.4)


@pytest.mark.parametrize(
    ("made", "accepted", "fastest"),
    [
        ([], 101, 10),  # the 101st request waits a window
        ([], 100, 0),
        ([(0.0, 10.0)], 1, 0),  # answered exactly a window before the start: gone
        ([(0.0, 10.5)], 2, 0.5),  # still there: one of the two places frees at t=20.5
    ],
)
def test_the_fastest_possible_counts_the_places_earlier_requests_hold(
    made: list[tuple[float, float]], accepted: int, fastest: float
) -> None:
    """The fastest the accepted requests could have gone from the first start at t=20,
    2 per 10 s when earlier requests are given, else 100 per 10 s."""

    async def scenario() -> float:
        limit = Limit(2, 10) if made else Limit(100, 10)
        pacer = Pacer(limit.requests, 10, made=made, portal=limit)
        await at(20)
        await pacer.acquire()
        for _ in range(accepted):
            pacer.observe(200, OK)
        return pacer.fastest()

    assert on_clock(scenario) == pytest.approx(fastest)


def test_utilization_is_the_fastest_possible_over_the_time_taken_at_most_one() -> None:
    async def scenario() -> list[float | None]:
        pacer = Pacer(10, 1.0)
        await at(3)
        await pacer.acquire()
        seen: list[float | None] = []
        await at(5)
        for _ in range(6):  # fastest 0.5 s in 2 s
            pacer.observe(200, OK)
        seen.append(pacer.utilization())
        for _ in range(25):  # fastest 3 s in 2 s: no more than all
            pacer.observe(200, OK)
        seen.append(pacer.utilization())
        return seen

    assert on_clock(scenario) == pytest.approx([0.25, 1.0])


def test_a_pacer_shows_its_state_for_debugging() -> None:
    assert repr(Pacer(100, 10, portal=Limit(100, 10))) == (
        "<Pacer limit=100 per 10 s burst rate=9.900/s in_flight=0 others=0.0/window "
        "paused_until=0.000>"
    )
    assert repr(Pacer(10, 1.0, margin=0)).startswith(
        "<Pacer limit=10 per 1 s spacing rate=10.000/s"
    )
