"""The job file's tables, the columns later versions added, and what SQLite's errors mean.

:mod:`bulkleads.jobstore.store` reads and writes through these; kept apart so that the
store's module is its queries.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Final

from bulkleads.errors import JobError

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rows (
    row INTEGER PRIMARY KEY,      -- 1-based data record index
    line INTEGER NOT NULL,        -- physical line where the record starts
    guid TEXT,                    -- trimmed guid, NULL when missing
    fields TEXT,                  -- JSON object of the typed changes this row asks for
    names TEXT,                   -- the fields this row sets, ;-separated (for the report)
    error TEXT                    -- why the row is invalid; NULL when valid
);
CREATE TABLE IF NOT EXISTS notes (  -- conflict notes; appended, indexed once planning ends
    row INTEGER NOT NULL,
    note TEXT NOT NULL,
    names TEXT                    -- the fields whose values this row sent (others lost)
);
CREATE TABLE IF NOT EXISTS bundles (
    guid TEXT PRIMARY KEY,
    body TEXT NOT NULL,           -- JSON object of the merged changes, without "guid"
    first_row INTEGER NOT NULL,   -- send order follows the input
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    status INTEGER,               -- last HTTP status, NULL when none
    reason TEXT,                  -- why it failed, was skipped, deferred or not sent
    before TEXT,                  -- JSON: the lead's values of the planned fields before the
                                  -- write (the backup undo restores); NULL until read
    expect TEXT,                  -- JSON: values the lead must still hold to be written (undo)
    note TEXT,                    -- what reading decided: values kept by --only-empty
    verified INTEGER,             -- 1 when read back after the write and found as sent
    record_id TEXT,               -- CRM --match: the id reading found (or creating gave)
    action TEXT,                  -- NULL: update; create, created (--create); archive (undo)
    clear_first TEXT,             -- JSON list: properties to clear before the write (a
                                  -- lifecycle stage moving back); NULL: none
    cleared INTEGER               -- 1 once HubSpot confirmed that clear
) WITHOUT ROWID;                  -- keyed by guid alone: one b-tree search per report row
CREATE TABLE IF NOT EXISTS links (  -- associations (associate:OBJECT columns), one per pair
    guid TEXT NOT NULL,           -- the bundle (record) it links from
    to_object TEXT NOT NULL,      -- companies, contacts, deals
    value TEXT NOT NULL,          -- as the file gave it: a record id, or a key to find
    first_row INTEGER NOT NULL,   -- the bundle's first row
    n INTEGER NOT NULL,           -- the link's place in the job: links go in this order
    from_id TEXT,                 -- the record linked from, once known
    to_id TEXT,                   -- the record linked to, once found
    checked INTEGER,              -- 1 once the record's existing links were read
    existed INTEGER,              -- 1: the pair was linked before (a label was added to it)
    state TEXT NOT NULL,          -- as bundles; skipped: the link was there already
    status INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    reason TEXT,
    action TEXT,                  -- NULL: link; archive (undo)
    PRIMARY KEY (guid, to_object, value)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS requests (  -- the timeline: every request of every run of the job
    run INTEGER NOT NULL,         -- 1 for the first run that sent, then 2, ...
    start REAL NOT NULL,          -- seconds since the epoch
    answer REAL NOT NULL,
    status INTEGER,               -- NULL: no answer (a transport failure)
    phase TEXT NOT NULL,          -- reading, updating, verifying
    attempt INTEGER NOT NULL,     -- 1 for a batch's first request, 2 for its first retry ...
    others REAL NOT NULL          -- requests per window the pacer saw another client use
);
"""
# Columns added after the first release, for job files planned by an earlier version.
ADDED: Final = {
    "notes": ("names TEXT",),
    "bundles": (
        "before TEXT",
        "expect TEXT",
        "note TEXT",
        "verified INTEGER",
        "record_id TEXT",
        "action TEXT",
        "clear_first TEXT",
        "cleared INTEGER",
    ),
}


class DamagedJob(JobError):
    """A job file SQLite cannot read, or whose integrity check fails."""

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(
            f"the job file {path} is damaged ({detail}); run the same update command with "
            "--fresh to keep it aside as archived and start the job over"
        )


class Transaction:
    """BEGIN/COMMIT around a block; ROLLBACK when it raises."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._db = db
        self._path = path

    def __enter__(self) -> None:
        self._db.execute("BEGIN")

    def __exit__(self, exc_type: object, exc: object, *rest: object) -> None:
        if exc_type is None:
            try:
                self._db.execute("COMMIT")
                return
            except sqlite3.OperationalError as error:
                if not no_room(error):
                    raise
                exc = error
        # SQLite rolls back by itself after some errors (a full disk among them).
        with contextlib.suppress(sqlite3.OperationalError):
            self._db.execute("ROLLBACK")
        if isinstance(exc, sqlite3.OperationalError) and no_room(exc):
            raise StateDiskFull(self._path, str(exc)) from None


# SQLite's primary result codes that mean the file's folder, not the file, is at fault.
_NO_ROOM: Final = {8, 13, 14}  # SQLITE_READONLY, SQLITE_FULL, SQLITE_CANTOPEN


def no_room(error: sqlite3.Error) -> bool:
    return (getattr(error, "sqlite_errorcode", 0) & 0xFF) in _NO_ROOM


class StateDiskFull(JobError):
    """The job file's disk is full (or read-only): the file is whole, the folder is not
    writable. What was recorded stays; the write in progress is sent again on resume."""

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(
            f"cannot write the job file {path} ({detail}): its disk is full or read-only. "
            "Everything recorded so far is kept; free space (or pass --state-dir with another "
            "folder for new jobs), then run the same command again to resume"
        )
