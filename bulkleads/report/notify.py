"""``--notify URL``: when a run ends, on every exit code, its summary is POSTed to a URL, so a
monitor (a Slack incoming webhook, a healthchecks-style ping, any endpoint that takes JSON)
learns what tonight's run did without reading logs.

The body is the ``--summary`` object plus a ``text`` line a Slack webhook shows as it is. It
never carries the token: the object holds none by construction, and the text goes through the
token's redaction all the same. A notification that fails (a refused URL, a timeout, a 5xx
after a few tries) is a warning: it never changes the run's exit code.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Final
from urllib.parse import urlsplit

import httpx
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from bulkleads.hubspot.http import USER_AGENT, is_loopback, shorten
from bulkleads.token import Token

TIMEOUT: Final = 5.0  # seconds a try may take: a monitor that hangs must not hold the run
ATTEMPTS: Final = 3
_LOG: Final = logging.getLogger("bulkleads.notify")
_WORDS: Final = {0: "done", 1: "rows failed", 2: "refused", 3: "stopped early", 4: "unreported"}


class _Again(Exception):
    """An answer worth another try (5xx, 429, no answer)."""


def text_line(summary: Mapping[str, object]) -> str:
    """One line a person reads in a chat: the job, how it ended, and its counts."""
    code = summary.get("exit_code")
    word = _WORDS.get(code, "interrupted") if isinstance(code, int) else "ended"
    job = summary.get("job") or "(no job)"
    if summary.get("error"):
        return shorten(f"bulkleads {job}: {word} (exit {code}): {summary['error']}", 600)
    counts = ", ".join(
        f"{summary[k]} {k.replace('_', ' ')}"
        for k in ("updated", "created", "failed", "invalid", "not_found", "deferred")
        if summary.get(k)
    )
    run = summary.get("this_run")
    tonight = (
        "; this run: nothing to do" if isinstance(run, dict) and run.get("nothing_to_do") else ""
    )
    return f"bulkleads {job}: {word} (exit {code}): {counts or 'no rows'}{tonight}"


def notify(url: str, summary: Mapping[str, object], token: Token | None = None) -> str | None:
    """POST ``summary`` (with its ``text``) to ``url``; returns a warning when it did not
    arrive, None when it did."""
    parts = urlsplit(url)
    where = parts.hostname or "?"  # a webhook's path is its secret: never printed
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "--notify takes an http(s) URL; nothing was posted"
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        return f"--notify: plain http to {where} is refused (use https://); nothing was posted"
    target = url
    body = json.dumps({**summary, "text": text_line(summary)}, ensure_ascii=False)
    if token is not None:
        body = token.redact(body)
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    retrying = Retrying(
        stop=stop_after_attempt(ATTEMPTS),
        wait=wait_exponential(multiplier=0.5, max=2),
        retry=retry_if_exception_type(_Again),
        reraise=True,
    )
    try:
        with httpx.Client(timeout=TIMEOUT, follow_redirects=False) as client:
            status = retrying(_post, client, target, body, headers)
    except (_Again, httpx.HTTPError) as exc:
        reason = type(exc).__name__ if isinstance(exc, httpx.HTTPError) else str(exc)
        return f"--notify: the summary did not reach {where} ({reason}); the run's exit stands"
    if not 200 <= status < 300:
        return f"--notify: {where} answered {status} to the summary; the run's exit stands"
    _LOG.debug("summary posted to %s", where)
    return None


def _post(client: httpx.Client, url: str, body: str, headers: dict[str, str]) -> int:
    try:
        status = client.post(url, content=body.encode(), headers=headers).status_code
    except httpx.TransportError as exc:
        raise _Again(type(exc).__name__) from None
    if status == 429 or status >= 500:
        raise _Again(f"HTTP {status}")
    return status
