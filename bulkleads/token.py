"""The access token, kept in one object that never formats itself.

Several HubSpot client libraries leaked tokens through exception messages and request logs, and
HubSpot revokes a token it finds in public. So the token is read from the environment or a file
(never argv, which ``ps`` shows to every user), held here, and only :meth:`Token.reveal` hands
out the value, to the targets that put it into request headers or the query string. Everything
that prints text which might contain it (server messages, URLs, transport errors) passes
through :meth:`Token.redact`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from .errors import UsageError

ENV_VAR = "HUBSPOT_ACCESS_TOKEN"
MASK = "***"


class Token:
    """A secret that redacts itself in ``str``, ``repr`` and f-strings."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        value = value.strip()
        if not value:
            raise UsageError(f"the access token is empty; set {ENV_VAR} or use --token-file")
        if any(c.isspace() for c in value):
            raise UsageError("the access token contains white space; check the token file")
        self._value = value

    def reveal(self) -> str:
        """The raw value, for the request builder only."""
        return self._value

    def redact(self, text: str) -> str:
        """``text`` with every occurrence of the token replaced by ``***``."""
        return text.replace(self._value, MASK) if self._value in text else text

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
            return Token(token_file.read_text(encoding="utf-8"))
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
    return Token(value)


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
