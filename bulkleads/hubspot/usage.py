"""When the portal's daily request limit starts again, so that a job the limit deferred can say
when to run it (a cron line can be set for that time). HubSpot's usage read gives ``resetsAt``;
it needs a scope some tokens lack, so no answer is an answer too: midnight in the account's
time zone, which is all HubSpot promises.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final

import httpx

from bulkleads.hubspot.http import NOT_JSON, answer_json, check_base_url
from bulkleads.hubspot.reads import Transient, get
from bulkleads.token import Token

USAGE_PATH: Final = "/account-info/2026-03/api-usage/daily/private-apps"


def daily_reset(base_url: str, token: Token, *, timeout: float) -> datetime | None:
    """The ``resetsAt`` of HubSpot's daily usage read (aware), or None when it cannot be
    read (no scope, an outage, an answer of another shape)."""
    url = check_base_url(base_url) + USAGE_PATH
    try:
        status, body = get(url, token, timeout=timeout, patience=timeout)
    except (Transient, httpx.HTTPError, ValueError):
        return None
    data = answer_json(body) if status == 200 else NOT_JSON
    results = data.get("results") if isinstance(data, Mapping) else None
    for item in results if isinstance(results, list) else ():
        when = item.get("resetsAt") if isinstance(item, Mapping) else None
        try:
            reset = datetime.fromisoformat(when) if isinstance(when, str) else None
        except ValueError:
            continue
        if reset is not None and reset.tzinfo is not None:
            return reset
    return None


def reset_words(reset: datetime | None) -> str:
    """When the limit starts again, in the machine's local time and UTC, for a message."""
    if reset is None:
        return "at midnight in the portal's time zone (HubSpot's usage read was not available)"
    local, utc = reset.astimezone(), reset.astimezone(UTC)
    return f"at {local:%Y-%m-%d %H:%M} local time ({utc:%Y-%m-%d %H:%M} UTC)"
