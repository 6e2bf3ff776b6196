"""The pacer's states one at a time, on a virtual clock: its one-request start, what a
refused request counts, what it refuses to be built with."""

from __future__ import annotations

import asyncio
import math

import pytest

from bulkleads.hubspot.limits import Limit, RateHeaders
from bulkleads.send.pacing import Pacer
from tests.conftest import run_virtual


@pytest.mark.parametrize(
    ("limit", "window"), [(0, 1.0), (10, 0), (-1, 1.0), (math.inf, 1.0), (10, math.inf)]
)
def test_a_pacer_refuses_a_limit_that_is_no_limit(limit: float, window: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        Pacer(limit, window)


def test_the_first_answer_ends_the_one_at_a_time_start() -> None:
    """Until the portal answers, one request at a time (its answer says what its window is):
    a second waits for the first's answer; after it, a third starts while the second is
    still open."""

    async def scenario() -> tuple[bool, float]:
        pacer = Pacer(100, 10, explicit=False)
        first = await pacer.acquire()
        waiting = asyncio.ensure_future(pacer.acquire())
        await asyncio.sleep(1)
        held = not waiting.done()  # no answer yet: held
        pacer.observe(200, RateHeaders(), first)
        pacer.release(first)
        second = await asyncio.wait_for(waiting, 5)
        third = await asyncio.wait_for(pacer.acquire(), 5)  # the second is still open
        return held, third - second

    held, gap = run_virtual(scenario())
    assert held and gap < 1


def test_a_known_portal_limit_needs_no_first_answer() -> None:
    """The portal's limit known from the runs before: several requests start at once."""

    async def scenario() -> list[float]:
        pacer = Pacer(100, 10, explicit=False, portal=Limit(100, 10))
        return [await asyncio.wait_for(pacer.acquire(), 5) for _ in range(3)]

    starts = run_virtual(scenario())
    assert starts[-1] - starts[0] < 1


def test_a_refused_request_does_not_count_as_ours() -> None:
    """At 2 per 10 s, a request the portal refused (429) holds no place in the window once
    answered: two more start without waiting for the window to pass."""

    async def scenario() -> float:
        pacer = Pacer(2, 10, portal=Limit(2, 10))
        refused = await pacer.acquire()
        pacer.observe(429, RateHeaders(), refused)
        pacer.release(refused)
        pacer._paused_until = 0  # the 429's pause aside: only the window is tested here
        starts = [await asyncio.wait_for(pacer.acquire(), 60) for _ in range(2)]
        return starts[-1] - refused

    assert run_virtual(scenario()) < 10


def test_an_accepted_request_holds_its_place_until_the_window_passes() -> None:
    """The same at 2 per 10 s with the first request accepted: the third waits a window."""

    async def scenario() -> float:
        pacer = Pacer(2, 10, portal=Limit(2, 10))
        first = await pacer.acquire()
        pacer.observe(200, RateHeaders(), first)
        pacer.release(first)
        await pacer.acquire()
        third = await asyncio.wait_for(pacer.acquire(), 60)
        return third - first

    assert run_virtual(scenario()) >= 10
