"""Every request a job made, as it went: when it left, when it was answered, what came back,
in which phase. Kept in the job store so that ``bulkleads report JOB --html`` can draw the
pace against the portal's limit long after the run. No token, no URL, no value is kept.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Final

from bulkleads.jobstore.schema import Transaction

_FLUSH_EVERY: Final = 256  # entries buffered before they go to the store in one transaction
# run, start, answer (seconds since the epoch), status (None: no answer), phase, attempt, others
TimelineEntry = tuple[int, float, float, int | None, str, int, float]


class RequestLog:
    """The job file's ``requests`` table (the :class:`.store.JobStore`'s connection)."""

    def __init__(self, db: sqlite3.Connection, tx: Callable[[], Transaction]) -> None:
        self._db = db
        self._tx = tx

    def add(self, entries: Iterable[TimelineEntry]) -> None:
        with self._tx():
            self._db.executemany("INSERT INTO requests VALUES (?, ?, ?, ?, ?, ?, ?)", entries)

    def entries(self) -> Iterator[TimelineEntry]:
        """The timeline, in the order requests left."""
        yield from self._db.execute("SELECT * FROM requests ORDER BY run, start")

    def next_run(self) -> int:
        """The number the next run that sends takes in the timeline."""
        (last,) = self._db.execute("SELECT MAX(run) FROM requests").fetchone()
        return (last or 0) + 1


class Timeline:
    """One run's requests, written to its job's request log in batches (``log`` None: kept
    nowhere, for callers that drive a sender without a job)."""

    def __init__(self, log: RequestLog | None = None, run: int = 0) -> None:
        self._log = log
        self.run = run
        loop = asyncio.get_running_loop()
        self._wall = time.time() - loop.time()  # loop time + this = seconds since the epoch
        self._loop = loop
        self._buffer: list[TimelineEntry] = []

    def __repr__(self) -> str:
        return f"<Timeline run={self.run} buffered={len(self._buffer)}>"

    def add(
        self, started: float, status: int | None, phase: str, attempt: int, others: float
    ) -> None:
        """One answered (or failed) request; ``status`` None: no answer came."""
        if self._log is None:
            return
        answered = self._loop.time()
        self._buffer.append(
            (
                self.run,
                round(started + self._wall, 4),
                round(answered + self._wall, 4),
                status,
                phase,
                attempt,
                round(others, 1),
            )
        )
        if len(self._buffer) >= _FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        if self._log is not None and self._buffer:
            self._log.add(self._buffer)
            self._buffer.clear()
