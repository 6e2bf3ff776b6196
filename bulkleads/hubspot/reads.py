"""What a run reads once, before or after its batches (property definitions, association
labels, the daily usage): a plain GET whose whole answer must come within ``--timeout``, tried
again on what may pass. Apart from the pool: these reads are few, synchronous, and a failure
stops or softens the run rather than failing a record.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Final

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from bulkleads.errors import PortalUnavailable
from bulkleads.hubspot.http import (
    LOCKED_WAIT_SECONDS,
    NOT_JSON,
    RETRYABLE_STATUSES,
    USER_AGENT,
    answer_json,
)
from bulkleads.token import Token

MAX_READ: Final = 16 << 20  # bytes; a portal with thousands of properties sends a few MB


def get(url: str, token: Token, *, timeout: float, patience: float) -> tuple[int, bytes]:
    """A GET of what a run reads once before planning (definitions, labels): each answer
    whole within ``timeout``, retried on 429, 5xx and lost answers within ``patience``.
    Raises :class:`Transient` (or httpx's errors) when it never came."""
    headers = {"Authorization": f"Bearer {token.reveal()}", "User-Agent": USER_AGENT}
    retrying = Retrying(
        stop=stop_after_attempt(4) | stop_after_delay(patience),
        wait=_pause,
        retry=retry_if_exception_type(Transient),
        reraise=True,
    )
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        return retrying(_get, client, url, headers, timeout)


class Transient(Exception):
    """A 423, 429, a 5xx or a lost answer: worth another attempt, after ``at_least`` seconds
    when HubSpot asked for a wait (423)."""

    def __init__(self, why: str, at_least: float = 0.0) -> None:
        super().__init__(why)
        self.at_least = at_least


_BACKOFF: Final = wait_exponential(multiplier=0.5, max=8)


def _pause(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    return max(getattr(exc, "at_least", 0.0), _BACKOFF(state))


def _get(
    client: httpx.Client, url: str, headers: dict[str, str], timeout: float
) -> tuple[int, bytes]:
    """One attempt, its whole answer within ``timeout`` (httpx's own bounds each read only:
    a body that drips a byte a second would never end)."""
    deadline = time.monotonic() + timeout
    try:
        with client.stream("GET", url, headers=headers) as response:
            if response.status_code == 423:
                raise Transient("HTTP 423 (portal locked)", at_least=LOCKED_WAIT_SECONDS)
            if response.status_code in RETRYABLE_STATUSES or response.status_code >= 500:
                raise Transient(f"HTTP {response.status_code}")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_READ:
                    raise ValueError("the answer is larger than any property list")
                if time.monotonic() > deadline:
                    raise Transient(f"no whole answer in {timeout:g} s (--timeout)")
            return response.status_code, bytes(body)
    except httpx.TransportError as exc:
        raise Transient(str(exc)) from None


def get_results(
    url: str, token: Token, what: str, *, timeout: float, patience: float
) -> tuple[int, list[object] | None]:
    """A read whose answer is HubSpot's ``{"results": [...]}``: its status, and the list
    (None when the answer is not one). A failure that may pass stops the run before any
    write (:class:`PortalUnavailable`, naming ``what``): nothing was sent."""
    try:
        status, body = get(url, token, timeout=timeout, patience=patience)
    except (Transient, httpx.HTTPError, ValueError) as exc:
        why = token.redact(str(exc)) or type(exc).__name__
        raise PortalUnavailable(
            f"could not read {what} ({why}); nothing was sent: run the same command again"
        ) from None
    data = answer_json(body) if status == 200 else NOT_JSON
    results = data.get("results") if isinstance(data, Mapping) else None
    return status, results if isinstance(results, list) else None
