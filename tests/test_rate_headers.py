"""HubSpot's rate-limit headers and Retry-After at their edges: what is believed, what is not."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bulkleads.hubspot.limits import Limit, RateHeaders, in_force, retry_after_seconds

NOW = datetime(2026, 11, 28, 10, 0, 0, tzinfo=UTC)


def test_every_header_is_read_whatever_its_case_and_spaces() -> None:
    info = RateHeaders.parse(
        {
            "x-hubspot-ratelimit-max": " 100 ",
            "X-HUBSPOT-RATELIMIT-REMAINING": "0",
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Daily": "250000",
            "X-HubSpot-RateLimit-Daily-Remaining": "12",
        }
    )
    assert info == RateHeaders(
        max=100, remaining=0, interval_ms=10_000, daily=250_000, daily_remaining=12
    )
    assert info.remaining == 0  # zero left is known, not unknown
    assert info.limit() == Limit(100, 10.0)


def test_an_interval_of_zero_is_no_interval() -> None:
    assert RateHeaders.parse({"X-HubSpot-RateLimit-Interval-Milliseconds": "0"}).interval_ms is None


@pytest.mark.parametrize(
    ("maximum", "interval", "believed"),
    [
        (1, 100, True),  # the lowest of each
        (100_000, 60_000, True),  # the highest of each
        (0, 10_000, False),
        (100_001, 10_000, False),
        (100, 99, False),
        (100, 60_001, False),
        (None, 10_000, False),
        (100, None, False),
    ],
)
def test_a_stated_limit_is_believed_only_within_plausible_bounds(
    maximum: int | None, interval: int | None, believed: bool
) -> None:
    headers = RateHeaders(max=maximum, interval_ms=interval)
    assert (headers.limit() is not None) is believed
    if believed:
        assert headers.limit() == Limit(maximum, interval / 1000)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("300", 300.0),  # the longest wait believed as seconds
        ("301", 0.301),  # past it, milliseconds
        ("300000", 300.0),  # the longest believed as milliseconds
        ("300001", 10.0),  # past that: the interval
        ("0", 10.0),  # no wait is not a wait
        ("inf", 10.0),
        ("Sat, 28 Nov 2026 09:59:00 GMT", 10.0),  # a date gone by
        ("Sat, 28 Nov 2026 10:04:00", 240.0),  # no zone: GMT
        ("Sat, 28 Nov 2026 10:06:00 GMT", 10.0),  # six minutes: not believed
    ],
)
def test_retry_after_edges(value: str, expected: float) -> None:
    assert retry_after_seconds(value, interval_ms=10_000, now=NOW) == pytest.approx(expected)


def test_without_retry_after_the_interval_then_one_second() -> None:
    assert retry_after_seconds(None, interval_ms=2_500) == 2.5
    assert retry_after_seconds(None, interval_ms=3_600_000) == 300.0  # capped
    assert retry_after_seconds(None) == 1.0


def test_the_least_time_a_number_of_requests_takes() -> None:
    ten = Limit(100, 10.0)
    assert ten.minimum_seconds(0) == 0.0
    assert ten.minimum_seconds(100) == 0.0
    assert ten.minimum_seconds(101) == 10.0
    assert ten.minimum_seconds(201) == 20.0
    assert Limit(0.5, 1.0).cap == 1 and ten.cap == 100 and ten.rate == 10.0


def test_the_limit_in_force() -> None:
    """The portal's once stated; a pace the user set caps it as a rate over its window."""
    asked, portal = Limit(10, 1.0), Limit(190, 10.0)
    assert in_force(asked, None, explicit=True) == asked
    assert in_force(asked, portal, explicit=False) == portal
    assert in_force(asked, portal, explicit=True) == Limit(100, 10.0)
    assert in_force(Limit(50, 1.0), portal, explicit=True) == portal


def test_a_retry_after_date_is_read_against_the_clock_now() -> None:
    """Without a given ``now``, the machine's clock (aware, UTC): a date two minutes ahead
    asks for about two minutes, a date gone by for nothing (the interval then)."""
    ahead = datetime.now(UTC).timestamp() + 120
    date = datetime.fromtimestamp(ahead, UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert 100 < retry_after_seconds(date) <= 120
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", interval_ms=10_000) == 10
