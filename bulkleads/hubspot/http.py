"""What every HubSpot API shares over HTTP: the target protocol the sender drives, the meaning
of a status code (an :class:`Outcome` that says what the sender should do next), the base URL's
safety rule, and the human part of a server's error message.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal, Protocol, runtime_checkable
from urllib.parse import urlsplit

import httpx

from bulkleads import __version__
from bulkleads.bundle import Bundle
from bulkleads.errors import InsecureURLError, UsageError
from bulkleads.token import Token

# split: the whole batch was refused, perhaps for one record; send it again in smaller parts.
# unconfirmed: a 2xx answer that does not say the record was written (unreadable, or silent).
Kind = Literal["ok", "retry", "final", "auth", "daily", "split", "unconfirmed"]
AuthMode = Literal["query", "bearer"]

RETRYABLE_STATUSES: Final = frozenset({423, 429, 500, 502, 503, 504})
# 423 Locked: HubSpot is digesting a very large sync and asks for at least this long a wait.
LOCKED_WAIT_SECONDS: Final = 2.0
AUTH_STATUSES: Final = frozenset({401, 403})
_LOOPBACK_NAMES: Final = frozenset({"localhost", "localhost.localdomain"})
_MAX_REASON: Final = 300  # characters of a server's words kept in a report cell
_MAX_KEPT: Final = 4000  # read of them before redacting and shortening
USER_AGENT: Final = f"bulkleads/{__version__}"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt came to. ``status`` is None when no answer arrived."""

    kind: Kind
    status: int | None
    reason: str | None = None
    headers: httpx.Headers | None = None  # read only of a 429 (its Retry-After)
    values: dict[str, object] | None = None  # a read: the record's current values
    record_id: str | None = None  # a read by a unique property: the id HubSpot gave


def check_base_url(url: str) -> str:
    """The base URL without a trailing slash; plain http is refused except to loopback."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--base-url {url!r} is not an http(s) URL, e.g. https://api.hubapi.com")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise UsageError("--base-url must not carry a query, fragment or credentials")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise InsecureURLError(
            f"refusing plain http to {parts.hostname}: the token would cross the network in "
            "clear text; use https:// (plain http is allowed only to 127.0.0.1/localhost)"
        )
    return url.rstrip("/")


def is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Endpoint(Protocol):
    """What the sender needs of where a phase sends: its batch size, and what a request that
    got no answer means."""

    batch_size: int

    def transport_failure(self, exc: httpx.HTTPError) -> Outcome: ...


class Target(Endpoint, Protocol):
    """What the sender needs from an API: requests for batches of bundles, and their meaning."""

    name: str

    def build(self, bundles: Sequence[Bundle]) -> httpx.Request: ...

    def classify(
        self, response: httpx.Response, bundles: Sequence[Bundle]
    ) -> tuple[Outcome, dict[str, Outcome]]:
        """The request's outcome, and outcomes for bundles that differ from it (by guid)."""
        ...

    def build_read(self, bundles: Sequence[Bundle]) -> httpx.Request:
        """A request for the current values of the bundles' fields (and of ``expect``)."""
        ...

    def classify_read(
        self, response: httpx.Response, bundles: Sequence[Bundle]
    ) -> tuple[Outcome, dict[str, Outcome]]:
        """Like :meth:`classify`; each record found is an ``ok`` outcome carrying ``values``."""
        ...


@runtime_checkable
class RecordMaker(Protocol):
    """A target that can create records (``--create``) and archive them (their undo)."""

    def build_create(self, bundles: Sequence[Bundle]) -> httpx.Request: ...

    def classify_create(
        self, response: httpx.Response, bundles: Sequence[Bundle]
    ) -> tuple[Outcome, dict[str, Outcome]]: ...

    def build_archive(self, bundles: Sequence[Bundle]) -> httpx.Request: ...

    def classify_archive(
        self, response: httpx.Response, bundles: Sequence[Bundle]
    ) -> tuple[Outcome, dict[str, Outcome]]: ...


class HttpTarget:
    """What every HubSpot API shares: status codes, rate limits, redaction."""

    def __init__(self, base_url: str, token: Token) -> None:
        self.base_url = check_base_url(base_url)
        self._token = token
        self._headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        self._read_headers = {"User-Agent": USER_AGENT}

    def _use_bearer(self) -> None:
        self._headers["Authorization"] = f"Bearer {self._token.reveal()}"
        self._read_headers["Authorization"] = self._headers["Authorization"]

    def outcome(self, response: httpx.Response) -> Outcome:
        """The request-level meaning of a status code."""
        status = response.status_code
        headers = response.headers
        if 200 <= status < 300:
            return Outcome("ok", status, None, headers)
        reason = shorten(self.redact(server_message(response)))
        if status == 429:
            if _policy(response) == "DAILY":
                return Outcome("daily", status, reason or "daily limit reached", headers)
            return Outcome("retry", status, reason or "rate limited", headers)
        if status in AUTH_STATUSES:
            return Outcome("auth", status, reason or "token refused", headers)
        if status == 423:
            said = f": {reason}" if reason else ""  # HubSpot's words may not name the lock
            return Outcome("retry", status, f"portal locked (423){said}", headers)
        if status in RETRYABLE_STATUSES:
            return Outcome("retry", status, reason or f"server error {status}", headers)
        if 300 <= status < 400:
            return Outcome(
                "final",
                status,
                f"redirect ({status}) not followed: a redirect "
                "could carry the token to another host; check --base-url",
                headers,
            )
        return Outcome("final", status, reason or f"HTTP {status}", headers)

    def transport_failure(self, exc: httpx.HTTPError) -> Outcome:
        """A request that got no answer; always worth another attempt (updates are idempotent)."""
        kind = "timeout" if isinstance(exc, httpx.TimeoutException) else "connection error"
        detail = shorten(self.redact(str(exc))) if str(exc) else type(exc).__name__
        return Outcome("retry", None, f"{kind}: {detail}")

    def post_json(self, path: str, body: object) -> httpx.Request:
        """A POST of ``body`` as compact JSON to ``path`` under the base URL, with the auth
        and content type every JSON request carries."""
        content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        return httpx.Request("POST", self.base_url + path, content=content, headers=self._headers)

    def redact(self, text: str) -> str:
        return self._token.redact(text)


NOT_JSON: Final = object()  # what :func:`answer_json` gives for a body that is not JSON


def answer_json(body: bytes | str) -> object:
    """A server's JSON, or :data:`NOT_JSON`: whatever the bytes, never an exception (a body
    of ten thousand ``[`` is a ``RecursionError`` to Python's parser, not a ``ValueError``)."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return NOT_JSON


def server_message(response: httpx.Response) -> str:
    """The human part of an error body: ``message`` from JSON (its findings readable), else
    a text excerpt; bounded, to be redacted and then :func:`shortened <shorten>`."""
    try:
        text = response.text
    except (UnicodeDecodeError, httpx.ResponseNotRead):
        return ""
    data = answer_json(text)
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return readable(data["message"])[:_MAX_KEPT]
    text = " ".join(text.split())
    if text.lower().startswith(("<!doctype", "<html")):
        return f"HTTP {response.status_code} with an HTML page instead of a JSON error"
    return text[:_MAX_KEPT]


def findings(message: str) -> list[dict[str, object]]:
    """The findings of a VALIDATION_ERROR: HubSpot lists them as a JSON array inside its
    message (``{"name", "error", "message"}`` items); none when it holds no whole array."""
    start = message.find("[")
    if start < 0:
        return []
    try:
        found = json.loads(message[start:])
    except ValueError:
        return []
    return [d for d in found if isinstance(d, dict)] if isinstance(found, list) else []


def readable(message: str) -> str:
    """HubSpot's message with its findings as ``name: what (ERROR)``, the property first: in
    the raw JSON the name comes last, after a message that may list every allowed option,
    and a cut report cell lost it."""
    found = findings(message)
    if not found:
        return message
    head = message[: message.find("[")].rstrip(" :")
    parts = [
        f"{d.get('name', '?')}: {d.get('message', '')} ({d.get('error', 'invalid')})".strip()
        for d in found
    ]
    return f"{head}: {'; '.join(parts)}"


def shorten(text: str, limit: int = _MAX_REASON) -> str:
    """``text`` within ``limit`` characters, cut at a word's end and marked with an ellipsis,
    never in the middle of a name or a value."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if not text[limit - 1].isspace():  # the cut fell inside a word: back to its start
        space = cut.rfind(" ")
        cut = cut[:space] if space > limit // 2 else cut
    return cut.rstrip(" ,;:") + "…"


def unreadable(response: httpx.Response) -> str:
    """What was wrong with a 2xx answer's body, in a few words."""
    body = response.content.strip()
    if not body:
        return "an empty body"
    if body[:1] == b"<":
        return "an HTML page, not JSON"
    data = answer_json(body)
    if data is NOT_JSON:
        return f"{len(body)} bytes that are not whole JSON"
    return "JSON with no results" if isinstance(data, dict) else "JSON that is not an object"


def _policy(response: httpx.Response) -> str | None:
    data = answer_json(response.content)
    return str(data.get("policyName", "")).upper() or None if isinstance(data, dict) else None
