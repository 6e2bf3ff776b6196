"""When the daily limit starts again: HubSpot's usage read, and what is said without it."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
import respx

from bulkleads.hubspot.usage import USAGE_PATH, daily_reset, reset_words
from bulkleads.token import Token

BASE = "https://api.example.test"
TOKEN = Token("pat-na1-00000000-1111-2222-3333-444444444444")
ANSWER = {
    "results": [
        {
            "collectedAt": "2026-12-07T14:00:00Z",
            "currentUsage": 250000,
            "fetchStatus": "SUCCESS",
            "name": "private-apps-api-calls-daily",
            "resetsAt": "2026-12-08T05:00:00Z",
            "usageLimit": 250000,
        }
    ]
}


def test_the_usage_read_gives_the_reset_time() -> None:
    with respx.mock(base_url=BASE) as mock:
        mock.get(USAGE_PATH).respond(200, json=ANSWER)
        reset = daily_reset(BASE, TOKEN, timeout=5)
    assert reset == datetime(2026, 12, 8, 5, tzinfo=UTC)
    assert "(2026-12-08 05:00 UTC)" in reset_words(reset)


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(403, json={"category": "MISSING_SCOPES"}),
        httpx.Response(200, text="<html>"),
        httpx.Response(200, json={"results": [{"resetsAt": "tomorrow"}]}),
        httpx.Response(200, json={"results": [{"resetsAt": "2026-12-08T05:00:00"}]}),  # no zone
        httpx.Response(200, json=[1, 2]),
    ],
)
def test_without_a_usable_answer_midnight_in_the_portals_zone_is_said(
    answer: httpx.Response,
) -> None:
    with respx.mock(base_url=BASE) as mock:
        mock.get(USAGE_PATH).mock(return_value=answer)
        reset = daily_reset(BASE, TOKEN, timeout=5)
    assert reset is None
    assert reset_words(reset).startswith("at midnight in the portal's time zone")
