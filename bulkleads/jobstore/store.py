"""The job store: one SQLite file per job, the single source of truth for a run.

It holds the plan (every input row, and one bundle per guid made from those rows) and every
outcome. The sender writes each result here the moment it arrives, so a crash, a kill or Ctrl-C
loses nothing that HubSpot confirmed; resume, retry and the report all read from here. Rows and
bundles live on disk, not in memory, so memory stays flat however large the input is.

Durability: WAL journal with ``synchronous=NORMAL``. Each commit reaches the operating system
before the next request is taken, so killing the process (``kill -9``, Ctrl-C twice) loses
nothing; only a power cut or kernel crash could drop the last few commits, and then those
bundles are sent again, which is harmless because a PUT of the same fields is idempotent.
``FULL`` would add an fsync per result for no gain a user could observe.
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Final, NamedTuple

from bulkleads.bundle import RESUMABLE, Bundle, Mark, Read, State
from bulkleads.fields import FieldError, same
from bulkleads.hubspot.http import RETRYABLE_STATUSES
from bulkleads.jobstore.links import LinkStore
from bulkleads.jobstore.meta import JobMeta
from bulkleads.jobstore.requests import RequestLog
from bulkleads.jobstore.schema import ADDED, SCHEMA, DamagedJob, StateDiskFull, Transaction, no_room

SAMPLE_SEED: Final = 20261207  # a dry run's draw: fixed, so the same file projects the same
RowRecord = tuple[int, int, str | None, str | None, str | None, str | None]

# to_send/count ``read``: None any bundle, True those read (backed up), False those not yet
_READ_FILTER: Final = {None: "", True: " AND before IS NOT NULL", False: " AND before IS NULL"}
# to_send/count ``action``: None any bundle, else the bundles of that action ("update": NULL)
_ACTION_FILTER: Final = {
    None: "",
    # an update is ready to write once what it must clear first is cleared
    "update": " AND action IS NULL AND (clear_first IS NULL OR cleared = 1)",
    "clear": " AND action IS NULL AND clear_first IS NOT NULL AND cleared IS NULL",
    "create": " AND action = 'create'",
    "archive": " AND action = 'archive'",
}


class ReportRow(NamedTuple):
    """One input row joined with its bundle's outcome (a tuple: a million are made per
    million-row report, at a seventh of a frozen dataclass's cost)."""

    row: int
    line: int
    guid: str | None
    names: str | None
    error: str | None
    note: str | None
    state: str | None
    status: int | None
    attempts: int
    reason: str | None
    body: str | None  # the bundle's body: the values sent (or to send)
    before: str | None  # the lead's values before, when read
    bundle_note: str | None
    fields: str | None  # the row's own changes (JSON), as planned
    own_names: str | None  # the fields the row set, before other rows of its lead won any
    action: str | None  # None: an update; created, archive: see the bundles table
    record_id: str | None


class JobStore:
    """An open job file. Not thread-safe: the sender uses it from the event loop only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._db = sqlite3.connect(path, isolation_level=None)
        except sqlite3.DatabaseError as exc:  # a folder, or a folder that cannot be read
            raise _open_fault(path, exc) from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise _open_fault(path, exc) from None

    def _migrate(self) -> None:
        for table, columns in ADDED.items():
            have = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            for column in columns:
                if column.split()[0] not in have:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")

    def check(self) -> None:
        """Raise :class:`DamagedJob` unless SQLite finds the file whole (one pass over it,
        about a second per million rows; done once when a run takes up an existing job)."""
        try:
            result = [r[0] for r in self._db.execute("PRAGMA quick_check")]
        except sqlite3.DatabaseError as exc:
            raise DamagedJob(self.path, str(exc)) from None
        if result != ["ok"]:
            raise DamagedJob(self.path, faults_said(result))
        if not JobMeta.of(self.meta()).job:  # an empty file opens as an empty database
            raise DamagedJob(self.path, "it holds no planned job (empty, or not a job file)")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> JobStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<JobStore {self.path.name}>"

    # -- metadata ---------------------------------------------------------------------------
    def set_meta(self, values: dict[str, object]) -> None:
        with self._tx():
            self._db.executemany(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                [(k, json.dumps(v)) for k, v in values.items()],
            )

    def meta(self) -> dict[str, object]:
        return {k: json.loads(v) for k, v in self._db.execute("SELECT key, value FROM meta")}

    # -- planning ---------------------------------------------------------------------------
    def add_rows(self, rows: Iterable[RowRecord]) -> None:
        """Insert ``(row, line, guid, fields_json, names, error)`` tuples in one transaction."""
        with self._tx():
            self._db.executemany(
                "INSERT INTO rows (row, line, guid, fields, names, error) VALUES (?,?,?,?,?,?)",
                rows,
            )

    def valid_rows_by_guid(self) -> Iterator[tuple[str, int, str]]:
        """``(guid, row, fields_json)`` of valid rows, grouped by guid, in row order.

        A plain ORDER BY: SQLite's external sort is bounded in memory and three times quicker
        than building an index on (guid, row) and then visiting each row through it."""
        yield from self._db.execute(
            "SELECT guid, row, fields FROM rows WHERE error IS NULL ORDER BY guid, row"
        )

    def add_bundles(self, bundles: Iterable[tuple[str, str, int, str, str | None]]) -> None:
        """Insert ``(guid, body_json, first_row, state, reason)`` tuples."""
        with self._tx():
            self._db.executemany(
                "INSERT INTO bundles (guid, body, first_row, state, reason) VALUES (?,?,?,?,?)",
                bundles,
            )

    def add_notes(self, notes: Iterable[tuple[int, str, str]]) -> None:
        """Append ``(row, note, names)`` conflict notes, ``names`` being the fields whose
        values the row still sends (an append is far cheaper than updating ``rows``)."""
        with self._tx():
            self._db.executemany("INSERT INTO notes (row, note, names) VALUES (?, ?, ?)", notes)

    def finish_plan(self) -> None:
        """Index what planning appended: notes for the report's join, bundles for the send
        order. Built once at the end, a sort, rather than updated by every insert."""
        self._db.execute("CREATE INDEX IF NOT EXISTS notes_by_row ON notes (row)")
        self._db.execute("CREATE INDEX IF NOT EXISTS bundles_by_order ON bundles (first_row)")

    # -- sending ----------------------------------------------------------------------------
    def to_send(
        self,
        states: tuple[str, ...],
        after_row: int,
        limit: int,
        *,
        read: bool | None = None,
        among: frozenset[str] | None = None,
        action: str | None = None,
    ) -> list[Bundle]:
        """The next ``limit`` bundles in one of ``states``, in input order after ``after_row``;
        ``read`` True keeps those whose current values are stored, False those not yet read;
        ``among`` (a few hundred at most: a dry run's sample) keeps only those guids."""
        marks = ",".join("?" * len(states))
        where = _READ_FILTER[read] + _ACTION_FILTER[action]
        keys: tuple[str, ...] = ()
        if among is not None:
            keys = tuple(sorted(among))
            where += f" AND guid IN ({','.join('?' * len(keys))})"
        cursor = self._db.execute(
            f"SELECT guid, body, first_row, attempts, expect, record_id FROM bundles "  # noqa: S608
            f"WHERE first_row > ? AND state IN ({marks}){where} ORDER BY first_row LIMIT ?",
            (after_row, *states, *keys, limit),
        )
        return [
            Bundle(g, json.loads(b), r, a, json.loads(e) if e else None, i)
            for g, b, r, a, e, i in cursor
        ]

    def count(
        self,
        states: tuple[str, ...],
        *,
        read: bool | None = None,
        action: str | None = None,
        among: frozenset[str] | None = None,
    ) -> int:
        """How many bundles :meth:`to_send` would give for the same arguments."""
        marks = ",".join("?" * len(states))
        where = _READ_FILTER[read] + _ACTION_FILTER[action]
        keys: tuple[str, ...] = ()
        if among is not None:
            keys = tuple(among)
            where += f" AND guid IN ({','.join('?' * len(keys))})"
        query = f"SELECT count(*) FROM bundles WHERE state IN ({marks}){where}"  # noqa: S608
        return int(self._db.execute(query, (*states, *keys)).fetchone()[0])

    def count_unverified(self) -> int:
        query = (
            "SELECT count(*) FROM bundles WHERE state = 'done' AND verified IS NULL "
            "AND coalesce(action, '') != 'archive'"
        )
        return int(self._db.execute(query).fetchone()[0])

    def to_verify(self, after_row: int, limit: int) -> list[Bundle]:
        """Updated bundles not yet read back, in input order after ``after_row``."""
        cursor = self._db.execute(
            "SELECT guid, body, first_row, attempts FROM bundles WHERE first_row > ? "
            "AND state = 'done' AND verified IS NULL AND coalesce(action, '') != 'archive' "
            "ORDER BY first_row LIMIT ?",
            (after_row, limit),
        )
        return [Bundle(g, json.loads(b), r, a) for g, b, r, a in cursor]

    def record_reads(self, reads: Iterable[Read]) -> None:
        """Store what reading found: ``(before, body, state, reason, note, record_id, guid)``
        (``record_id`` None keeps the one stored)."""
        with self._tx():
            self._db.executemany(
                "UPDATE bundles SET before = ?, body = ?, state = ?, reason = ?, note = ?, "
                "record_id = coalesce(?, record_id) WHERE guid = ?",
                reads,
            )

    def invalidate(self, items: Iterable[tuple[str, str]]) -> int:
        """``(why, guid)``: bundles found invalid once their records were read (a stage of
        another pipeline than the record's); their rows say why. Returns the rows made
        invalid."""
        with self._tx():
            return sum(self._invalid(why, guid) for why, guid in items)

    def _invalid(self, why: str, guid: str) -> int:
        """Inside a transaction: the bundle invalid, its valid rows saying why."""
        self._db.execute(
            "UPDATE bundles SET state = ?, reason = ? WHERE guid = ?", (State.INVALID, why, guid)
        )
        return int(
            self._db.execute(
                "UPDATE rows SET error = ? WHERE guid = ? AND error IS NULL", (why, guid)
            ).rowcount
        )

    def clear_first(self, items: Iterable[tuple[list[str], str]]) -> None:
        """``(names, guid)``: properties HubSpot must see cleared before the bundle is
        written (a lifecycle stage moving back); the write waits for :meth:`cleared`."""
        with self._tx():
            self._db.executemany(
                "UPDATE bundles SET clear_first = ?, cleared = NULL WHERE guid = ?",
                ((json.dumps(names), guid) for names, guid in items),
            )

    def to_clear(self, states: tuple[str, ...], after_row: int, limit: int) -> list[Bundle]:
        """The next bundles whose clear is not confirmed yet, each with the clearing body
        (every property to clear set to "")."""
        marks = ",".join("?" * len(states))
        cursor = self._db.execute(
            f"SELECT guid, clear_first, first_row, attempts, record_id FROM bundles "  # noqa: S608
            f"WHERE first_row > ? AND state IN ({marks}){_ACTION_FILTER['clear']} "
            "AND before IS NOT NULL ORDER BY first_row LIMIT ?",
            (after_row, *states, limit),
        )
        return [
            Bundle(g, dict.fromkeys(json.loads(names), ""), r, a, None, i)
            for g, names, r, a, i in cursor
        ]

    def cleared(self, guids: Iterable[str]) -> None:
        """HubSpot confirmed the clear: the write may go."""
        with self._tx():
            self._db.executemany(
                "UPDATE bundles SET cleared = 1 WHERE guid = ?", ((g,) for g in guids)
            )

    def moved_back(self) -> int:
        """Records written back a stage (cleared, then set)."""
        query = "SELECT count(*) FROM bundles WHERE clear_first IS NOT NULL AND state = 'done'"
        return int(self._db.execute(query).fetchone()[0])

    def set_expect(self, expected: Iterable[tuple[str, str]]) -> None:
        """``(expect_json, guid)``: the values each lead must still hold to be written."""
        with self._tx():
            self._db.executemany("UPDATE bundles SET expect = ? WHERE guid = ?", expected)

    def record_verified(self, results: Iterable[tuple[int, str | None, str]]) -> None:
        """``(verified, reason, guid)``: 1 read back as sent; 0 marks the bundle failed."""
        with self._tx():
            self._db.executemany(
                "UPDATE bundles SET verified = ?, "
                "state = CASE WHEN ? IS NULL THEN state ELSE 'failed' END, "
                "reason = coalesce(?, reason) WHERE guid = ?",
                ((v, r, r, g) for v, r, g in results),
            )

    def updated(self) -> Iterator[tuple[str, dict[str, object], dict[str, object] | None]]:
        """``(guid, body, before)`` of every updated bundle, in input order (for undo)."""
        return self._bodies("state = 'done' AND action IS NULL")

    def settle_created(self, items: Iterable[tuple[str, str | None, str | None, str]]) -> None:
        """Like :meth:`set_action`, for bundles being created only (an update stays one)."""
        with self._tx():
            self._db.executemany(
                "UPDATE bundles SET action = ?, record_id = coalesce(?, record_id), "
                "before = coalesce(?, before) WHERE guid = ? AND action = 'create'",
                items,
            )

    def created(self) -> list[tuple[str, str]]:
        """``(guid, record_id)`` of every record the job created (undo archives them)."""
        return self._db.execute(
            "SELECT guid, record_id FROM bundles WHERE state = 'done' AND action = 'created' "
            "ORDER BY first_row"
        ).fetchall()

    def set_action(self, items: Iterable[tuple[str, str | None, str | None, str]]) -> None:
        """``(action, record_id, before_json, guid)``: a record to create (no record has its
        key; ``before`` all empty), created (its new id), or to archive (undo)."""
        with self._tx():
            self._db.executemany(
                "UPDATE bundles SET action = ?, record_id = coalesce(?, record_id), "
                "before = coalesce(?, before) WHERE guid = ?",
                items,
            )

    def reads(
        self, among: frozenset[str] | None = None
    ) -> Iterator[tuple[str, dict[str, object], dict[str, object] | None]]:
        """``(guid, body, before)`` of every bundle whose current values were read (of those
        ``among`` when given: a dry run's sample)."""
        rows = self._bodies("before IS NOT NULL")
        return rows if among is None else (row for row in rows if row[0] in among)

    def changed_since(self) -> set[str]:
        """Undo: the bundles read and found changed since their job (no longer holding what
        it wrote), which the undo skips unless --force."""
        changed = set()
        for guid, before, expect in self._db.execute(
            "SELECT guid, before, expect FROM bundles "
            "WHERE before IS NOT NULL AND expect IS NOT NULL"
        ):
            now, wrote = _object(before) or {}, _object(expect) or {}
            if any(not same(now.get(name), value) for name, value in wrote.items()):
                changed.add(guid)
        return changed

    def _bodies(
        self, where: str
    ) -> Iterator[tuple[str, dict[str, object], dict[str, object] | None]]:
        """A damaged cell (not a JSON object) reads as no backup: never a crash, never a
        value made up."""
        for guid, body, before in self._db.execute(
            f"SELECT guid, body, before FROM bundles WHERE {where} ORDER BY first_row"  # noqa: S608
        ):
            sent = _object(body)
            yield guid, sent or {}, _object(before) if sent is not None else None

    def progress(self) -> tuple[int, int]:
        """``(done, left)``: bundles updated, and bundles a run of the job would still send."""
        states = self.bundle_states()
        return states.get(State.DONE, 0), sum(states.get(s, 0) for s in RESUMABLE)

    def verified_count(self) -> int:
        return int(
            self._db.execute("SELECT count(*) FROM bundles WHERE verified = 1").fetchone()[0]
        )

    def sample(
        self, states: tuple[str, ...], count: int, *, seed: int = SAMPLE_SEED
    ) -> frozenset[str]:
        """``count`` updates in ``states`` drawn at random (seeded, so a dry run shows the same
        projection twice), by reservoir over the bundles in input order: memory holds the
        sample only. Not every k-th: on generated files and sorted exports a stride falls in
        step with the pattern. Records to create or archive need no reading: never drawn."""
        marks = ",".join("?" * len(states))
        cursor = self._db.execute(
            f"SELECT guid FROM bundles WHERE state IN ({marks}) AND action IS NULL "  # noqa: S608
            "ORDER BY first_row",
            states,
        )
        draw = random.Random(seed)
        kept: list[str] = []
        for seen, (guid,) in enumerate(cursor):
            if seen < count:
                kept.append(guid)
            elif (slot := draw.randrange(seen + 1)) < count:
                kept[slot] = guid
        return frozenset(kept)

    def mark(self, updates: Iterable[Mark], *, keep_status: bool = True) -> None:
        """Record ``(state, status, attempts, reason, guid)`` results in one transaction,
        committed at once so they survive a kill. None keeps a bundle's attempts, and its
        status unless ``keep_status`` is False (no answer counts: ``retry`` sends it again)."""
        status = "coalesce(?, status)" if keep_status else "?"
        with self._tx():
            self._db.executemany(
                f"UPDATE bundles SET state = ?, status = {status}, "  # noqa: S608
                "attempts = coalesce(?, attempts), reason = ? WHERE guid = ?",
                updates,
            )

    def requeue(self, *, all_failed: bool = False) -> dict[str, int]:
        """Make pending again what ``retry`` sends: ``not_sent`` bundles, failures whose last
        answer was transient (no answer, 423, 429 or 5xx), and with ``all_failed`` every failure;
        the job's links alike. Returns how many bundles of each kind."""
        codes = ", ".join(str(code) for code in sorted(RETRYABLE_STATUSES))
        transient = f"status IS NULL OR status IN ({codes})"
        kinds = {
            "not_sent": "state = 'not_sent'",
            "transient": f"state = 'unconfirmed' OR (state = 'failed' AND ({transient}))",
            "final": "state IN ('failed', 'not_found')" if all_failed else "0",
        }
        # A write --verify found not kept (verified 0) is HubSpot's silent no-op, not a
        # refusal: sending it again can succeed. Links are never verified.
        unkept = " OR (state = 'failed' AND verified = 0)"
        moved: dict[str, int] = {}
        with self._tx():
            for kind, where in kinds.items():
                bundles = where + unkept if kind == "transient" else where
                cursor = self._db.execute(
                    "UPDATE bundles SET state = 'pending', reason = NULL, verified = NULL "  # noqa: S608
                    f"WHERE {bundles}"
                )
                moved[kind] = cursor.rowcount
                self._db.execute(
                    f"UPDATE links SET state = 'pending', reason = NULL WHERE {where}"  # noqa: S608
                )
        return moved

    def move(self, from_states: tuple[str, ...], to_state: str, reason: str | None) -> int:
        """Move every bundle in ``from_states`` to ``to_state``; returns how many moved."""
        marks = ",".join("?" * len(from_states))
        with self._tx():
            cursor = self._db.execute(
                f"UPDATE bundles SET state = ?, reason = ? "  # noqa: S608 - marks only
                f"WHERE state IN ({marks})",
                (to_state, reason, *from_states),
            )
        return cursor.rowcount

    def replan_unsent(self, plan: Path) -> int:
        """Take from a fresh plan of the same input (``plan``, a job file) what it decides
        for what this job has not sent yet: a resume re-checks the file against the portal's
        definitions of today. A value refused since (an option removed) makes an invalid row,
        never a request; a value converted otherwise (a label planned on HubSpot's defaults,
        sent as written, is now its option's value) is sent converted. A bundle keeps only the
        fields its rows still set validly; one left with none is invalid. Returns how many
        rows became invalid."""
        # an inflight bundle may have been written: reading it back settles it, not this
        unsent = ",".join(f"'{s}'" for s in (State.PENDING, State.DEFERRED, State.NOT_SENT))
        self._db.execute("ATTACH DATABASE ? AS plan", (str(plan),))
        try:
            with self._tx():
                newly = self._db.execute(
                    "SELECT r.row, p.error FROM rows r JOIN plan.rows p ON p.row = r.row "  # noqa: S608
                    "JOIN bundles b ON b.guid = r.guid "
                    f"WHERE r.error IS NULL AND p.error IS NOT NULL AND b.state IN ({unsent})"
                ).fetchall()
                self._db.executemany(
                    "UPDATE rows SET error = ? WHERE row = ?", ((e, r) for r, e in newly)
                )
                changed = self._db.execute(
                    "SELECT b.guid, b.body, p.body FROM bundles b "  # noqa: S608
                    "LEFT JOIN plan.bundles p ON p.guid = b.guid "
                    f"WHERE b.state IN ({unsent}) AND p.body IS NOT b.body"
                ).fetchall()
                for guid, kept, planned in changed:
                    fresh = _object(planned) or {}
                    body = {name: fresh[name] for name in _object(kept) or {} if name in fresh}
                    if body:
                        self._db.execute(
                            "UPDATE bundles SET body = ? WHERE guid = ?", (json.dumps(body), guid)
                        )
                    else:
                        self._db.execute(
                            "UPDATE bundles SET state = ?, reason = ? WHERE guid = ?",
                            (State.INVALID, "every row of it is invalid", guid),
                        )
        finally:
            self._db.execute("DETACH DATABASE plan")
        return len(newly)

    def recheck_unsent(
        self, convert: Callable[[str, object], object], *, refused: bool = False
    ) -> int:
        """Convert what the job has not sent yet again with ``convert`` (a portal's rules,
        which take the values they give back unchanged): a job planned without the portal's
        definitions sends labels as their values once it can read them, and a bundle holding
        a value they refuse becomes invalid, its rows saying why. ``refused``: the bundles the
        portal refused with a 400 instead (checked against definitions it remembered), whose
        rows become invalid when fresh definitions refuse them too. Returns how many rows
        became invalid."""
        unsent = ",".join(f"'{s}'" for s in (State.PENDING, State.DEFERRED, State.NOT_SENT))
        where = "state = 'failed' AND status = 400" if refused else f"state IN ({unsent})"
        rows = 0
        with self._tx():
            bundles = self._db.execute(
                f"SELECT guid, body FROM bundles WHERE {where}"  # noqa: S608
            ).fetchall()
            for guid, cell in bundles:
                body = _object(cell) or {}
                try:
                    fresh = {name: convert(name, value) for name, value in body.items()}
                except FieldError as error:
                    why = f"{error} (checked against the portal's definitions read again)"
                    rows += self._invalid(why, guid)
                    continue
                if fresh != body:
                    self._db.execute(
                        "UPDATE bundles SET body = ? WHERE guid = ?", (json.dumps(fresh), guid)
                    )
        return rows

    # -- reading back -----------------------------------------------------------------------
    def bundle_rows(self) -> Iterator[tuple[str, int]]:
        """``(guid, first_row)`` of every bundle."""
        yield from self._db.execute("SELECT guid, first_row FROM bundles")

    def settled(self) -> Counter[str]:
        """Records by what became of them, in words that outlive a run (``updated``,
        ``created``, ``archived``, ``failed``, ``skipped``, ``not_found``, ``unconfirmed``,
        ``invalid``): two snapshots, before and after a run, tell what that run did."""
        words = {State.FAILED: "failed", State.SKIPPED: "skipped", State.NOT_FOUND: "not_found"}
        words |= {State.UNCONFIRMED: "unconfirmed", State.INVALID: "invalid"}
        # "create" done: written, its new id not recorded yet (a kill between the two)
        done = {None: "updated", "create": "created", "created": "created", "archive": "archived"}
        counts: Counter[str] = Counter()
        for state, action, n in self._db.execute(
            "SELECT state, action, count(*) FROM bundles GROUP BY state, action"
        ):
            word = done[action] if state == State.DONE else words.get(state)
            if word is not None:
                counts[word] += n
        return counts

    def bundle_states(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT state, count(*) FROM bundles GROUP BY state"))

    def row_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM rows").fetchone()[0])

    def report_rows(self) -> Iterator[ReportRow]:
        """Every input row in input order, with its bundle's outcome (a streaming cursor)."""
        cursor = self._db.execute(
            "SELECT r.row, r.line, r.guid, coalesce(n.names, r.names), r.error, n.note, "
            "b.state, b.status, coalesce(b.attempts, 0), b.reason, b.body, b.before, b.note, "
            "r.fields, r.names, b.action, b.record_id "
            "FROM rows r LEFT JOIN bundles b ON b.guid = r.guid AND r.error IS NULL "
            "LEFT JOIN notes n ON n.row = r.row ORDER BY r.row"
        )
        return map(ReportRow._make, cursor)

    @property
    def requests(self) -> RequestLog:
        """Every request the job made (:mod:`.timeline`)."""
        return RequestLog(self._db, self._tx)

    @property
    def links(self) -> LinkStore:
        """The associations the job makes (:mod:`.link_store`, which builds on this module)."""
        return LinkStore(self._db, self._tx)

    def _tx(self) -> Transaction:
        return Transaction(self._db, self.path)


def faults_said(result: Iterable[object]) -> str:
    """SQLite's integrity check in a line: the first three faults and how many more (it may
    give its whole list as one row of lines, headed "*** in database main ***")."""
    faults = [f for r in result for f in str(r).splitlines() if not f.startswith("***")]
    more = f"; {len(faults) - 3} more" if len(faults) > 3 else ""
    return "; ".join(faults[:3]) + more


def _open_fault(path: Path, error: sqlite3.DatabaseError) -> DamagedJob | StateDiskFull:
    """Why a job file did not open: its folder (full, read-only, missing), or the file."""
    return StateDiskFull(path, str(error)) if no_room(error) else DamagedJob(path, str(error))


def _object(cell: str | None) -> dict[str, object] | None:
    """A JSON object cell, or None when it is empty or not one (a damaged job file)."""
    if not cell:
        return None
    try:
        value = json.loads(cell)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
