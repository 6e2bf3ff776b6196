"""The exceptions bulkleads raises when a run must stop, and the exit code each one maps to.

Expected per-row problems (a bad date, a 404) are values in the job store, never exceptions.
Exceptions are for the few things that stop the whole command before anything is sent::

    BulkleadsError                 exit 2: nothing was sent
    ├── UsageError                 flags that do not fit together, a missing token
    ├── InsecureURLError           plain http:// to a host that is not loopback
    ├── InputError                 the input cannot be read as a whole
    │                              (undecodable bytes, bad header, unknown format)
    ├── JobError                   a job file that cannot be found or opened
    ├── PortalUnavailable          exit 3: what must be read before the first write (the
    │                              portal's definitions) did not come; run it again later
    └── ReportError                exit 4: the job ran and is kept, its report could not be
                                   written (disk full, folder gone)

Messages never contain the token: it lives in :class:`bulkleads.token.Token`, which formats as
``***``, and every message that quotes a server or a URL goes through its ``redact``.
Each message ends with what the user can do next.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_ROWS_FAILED = 1
EXIT_USAGE = 2
EXIT_STOPPED = 3
EXIT_UNREPORTED = 4
EXIT_ABORTED = 130


class BulkleadsError(Exception):
    """Base class: the run stops before anything is sent."""

    exit_code = EXIT_USAGE


class UsageError(BulkleadsError):
    """The command line or environment does not describe a runnable job."""


class InsecureURLError(BulkleadsError):
    """A base URL would send the token in clear text over the network."""


class InputError(BulkleadsError):
    """The input file as a whole cannot be used; ``line`` names where, when known."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        self.line = line
        super().__init__(f"line {line}: {message}" if line is not None else message)


class JobError(BulkleadsError):
    """A job named on the command line does not exist or cannot be read."""


class PortalUnavailable(BulkleadsError):
    """HubSpot did not answer what a run reads before writing (5xx, 429, timeouts past
    --max-retry-time). Planning on guesses instead would send labels unconverted and let bad
    values through; nothing was sent, so the same command later starts cleanly."""

    exit_code = EXIT_STOPPED


class ReportError(BulkleadsError):
    """The report could not be written; the outcomes are safe in the job file, from which
    ``bulkleads report JOB`` writes it again."""

    exit_code = EXIT_UNREPORTED
