"""The access token, kept in one object that never formats itself.

Several HubSpot client libraries leaked tokens through exception messages and request logs, and
HubSpot revokes a token it finds in public. So the token is read from the environment or a file
(never argv, which ``ps`` shows to every user), held here, and only :meth:`Token.reveal` hands
out the value, to the targets that put it into request headers or the query string. Everything
that prints text which might contain it (server messages, URLs, transport errors) passes
through :meth:`Token.redact`.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Final
from urllib.parse import quote, quote_plus

from bulkleads.errors import UsageError

ENV_VAR = "HUBSPOT_ACCESS_TOKEN"
MASK = "***"
FRAGMENT: Final = 8  # characters of the token that may never appear together in any output
# RFC 6750's b64token: every HubSpot token (private app, OAuth, legacy key) is made of these.
_TOKEN_CHARS: Final = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


class Token:
    """A secret that redacts itself in ``str``, ``repr`` and f-strings."""

    __slots__ = ("_grams", "_value")

    def __init__(self, value: str, source: str = f"${ENV_VAR}") -> None:
        """``source`` names where the value came from, for the error that refuses it."""
        value = value.strip().lstrip("\ufeff").strip()  # an editor's BOM is not the token's
        if not value:
            raise UsageError(f"the access token is empty; set {ENV_VAR} or use --token-file")
        if any(c.isspace() for c in value):
            raise UsageError(f"the access token in {source} contains white space; check it")
        if _TOKEN_CHARS.fullmatch(value) is None:
            raise UsageError(
                f"the access token in {source} holds characters HubSpot tokens never hold "
                "(they are letters, digits and - . _ ~ + /); check its encoding and that it "
                "holds the token alone"
            )
        self._value = value
        # Every form a server may echo it in, and each run of FRAGMENT characters of those.
        every = "".join(c if c.isalnum() else f"%{ord(c):02X}" for c in value)
        forms = {value, quote(value, safe=""), quote_plus(value), every, json.dumps(value)[1:-1]}
        self._grams = frozenset(
            form[i : i + FRAGMENT] for form in forms for i in range(len(form) - FRAGMENT + 1)
        )

    def reveal(self) -> str:
        """The raw value, for the request builder only."""
        return self._value

    def redact(self, text: str) -> str:
        """``text`` with the token, and every piece of it of :data:`FRAGMENT` characters or
        more (raw, percent-encoded or JSON-escaped), replaced by ``***``: a server message cut
        in the middle of an echoed token leaves no piece of it either."""
        if len(text) < FRAGMENT:
            return text
        masked = bytearray(len(text))
        hit = False
        for i in range(len(text) - FRAGMENT + 1):
            if text[i : i + FRAGMENT] in self._grams:
                masked[i : i + FRAGMENT] = b"\x01" * FRAGMENT
                hit = True
        if not hit:
            return text
        out: list[str] = []
        for i, char in enumerate(text):
            if not masked[i]:
                out.append(char)
            elif i == 0 or not masked[i - 1]:
                out.append(MASK)
        return "".join(out)

    def __repr__(self) -> str:
        return f"Token({MASK})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Token cannot be pickled")


def load_token(
    token_file: Path | None, environ: dict[str, str] | None = None, *, var: str = ENV_VAR
) -> Token:
    """The token from ``--token-file`` if given, else from ``HUBSPOT_ACCESS_TOKEN`` (or the
    variable a profile names)."""
    env = os.environ if environ is None else environ
    if token_file is not None:
        try:
            return Token(token_file.read_text(encoding="utf-8"), source=str(token_file))
        except UnicodeDecodeError:
            raise UsageError(
                f"the token file {token_file} is not UTF-8 text; it should hold the token alone"
            ) from None
        except OSError as exc:
            raise UsageError(
                f"cannot read the token file {token_file}: {exc.strerror}; "
                "check the path and its permissions"
            ) from None
    value = env.get(var, "")
    if not value.strip():
        raise UsageError(
            f"no access token: set the environment variable {var}, or put the token in a "
            "file and pass --token-file PATH (a --dry-run needs no token)"
        )
    return Token(value, source=f"${var}")


def optional_token(
    token_file: Path | None, environ: dict[str, str] | None = None, *, var: str = ENV_VAR
) -> Token | None:
    """The token when one is given (a dry run reads with it), None when none is."""
    env = os.environ if environ is None else environ
    if token_file is None and not env.get(var, "").strip():
        return None
    return load_token(token_file, environ, var=var)


class RedactingFilter(logging.Filter):
    """Rewrites log records so the token never reaches a handler, whatever logged it."""

    def __init__(self, token: Token) -> None:
        super().__init__()
        self._token = token

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self._token.redact(message)
        if redacted != message or record.args:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[1] is not None:
            # Tracebacks are formatted later from exc_info; render and redact them now.
            formatter = logging.Formatter()
            record.exc_text = self._token.redact(formatter.formatException(record.exc_info))
            record.exc_info = None
        return True
