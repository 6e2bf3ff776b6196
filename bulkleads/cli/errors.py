"""One error, one line on stderr and one exit code: never a traceback, never the token."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Final, NoReturn, ParamSpec

import typer

from bulkleads.cli.profiles import load_profile
from bulkleads.errors import EXIT_ABORTED, BulkleadsError
from bulkleads.report.notify import notify
from bulkleads.report.screen import LOG_FORMAT_VAR, LogFormat, print_error
from bulkleads.report.summary import error_summary, write_error_summary
from bulkleads.token import ENV_VAR

P = ParamSpec("P")

# Ctrl-C outside a run's sending (planning, the summary): the job file is written in
# transactions, so what it holds is whole.
INTERRUPTED: Final = (
    "interrupted: exiting now; the job file is consistent, and running the same command "
    "resumes the job"
)


def handles_errors(command: Callable[P, None]) -> Callable[P, None]:
    """Known errors become one line on stderr (one JSON object with --log-format json) and
    their exit code, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            command(*args, **kwargs)
        except BulkleadsError as error:
            _end(str(error), type(error).__name__, error.exit_code, kwargs)
        except KeyboardInterrupt:  # typer would turn it into a silent exit 130
            _end(INTERRUPTED, "interrupted", EXIT_ABORTED, kwargs)

    return wrapper


def _end(message: str, kind: str, code: int, flags: dict[str, object]) -> NoReturn:
    """The command's end: its line on stderr, its ``--summary`` file, its exit code."""
    fmt: LogFormat = "json" if flags.get("log_format") == "json" else format_asked()
    print_error(message, kind=kind, exit_code=code, fmt=fmt)
    summary = flags.get("summary")
    if isinstance(summary, Path):
        write_error_summary(summary, scrub(message), kind, code)
    if (url := _notify_url(flags)) is not None:
        warning = notify(url, error_summary(scrub(message), kind, code))
        if warning is not None:
            print_error(warning, kind="notify_failed", exit_code=code, fmt=fmt)
    raise typer.Exit(code) from None


def _notify_url(flags: dict[str, object]) -> str | None:
    """--notify, else the profile's: an error before the profile was applied still tells."""
    url = flags.get("notify")
    if isinstance(url, str):
        return url
    profile = flags.get("profile")
    if isinstance(profile, str):
        try:
            return load_profile(profile).notify
        except BulkleadsError:
            return None
    return None


# click's error base class, wherever this typer takes click from (typer 0.29 vendors a copy).
CLICK_ERRORS: tuple[type[Exception], ...] = tuple(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)


def format_asked(argv: list[str] | None = None) -> LogFormat:
    """The log format a command line asks for, known before it is parsed (so that a usage
    error is JSON too): ``--log-format json`` or ``$BULKLEADS_LOG_FORMAT``."""
    args = sys.argv[1:] if argv is None else argv
    for i, arg in enumerate(args):
        if arg == "--log-format=json" or (
            arg == "--log-format" and args[i + 1 : i + 2] == ["json"]
        ):
            return "json"
    return "json" if os.environ.get(LOG_FORMAT_VAR, "").strip() == "json" else "text"


def fail(error: BulkleadsError) -> NoReturn:
    print_error(
        str(error), kind=type(error).__name__, exit_code=error.exit_code, fmt=format_asked()
    )
    raise SystemExit(error.exit_code)


def scrub(text: str) -> str:
    """Redact the token from a trace even when the failure came before it was loaded."""
    import os

    value = os.environ.get(ENV_VAR, "").strip()
    return text.replace(value, "***") if value else text
