"""The report: one line per input row, in input order, generated from the job store.

It is written as a stream (a cursor over the store, never the whole job in memory) into a
temporary file that replaces the old report only when complete, so a kill while writing leaves
the previous report intact. CSV cells that a spreadsheet would run as a formula are made inert.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
from collections import Counter
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path
from typing import Final, Literal

from bulkleads.bundle import State
from bulkleads.errors import EXIT_OK, EXIT_ROWS_FAILED, EXIT_STOPPED, ReportError, UsageError
from bulkleads.jobstore import meta as job_meta
from bulkleads.jobstore.folder import fingerprint
from bulkleads.jobstore.links import PREFIX, LinkRow
from bulkleads.jobstore.meta import JobMeta
from bulkleads.jobstore.store import JobStore, ReportRow
from bulkleads.report.paths import check_regular
from bulkleads.send.pool import SendStats

Columns = tuple[str | None, ...]  # a header to recognise; None: the key, whatever its name
COLUMNS: Final = (
    "row",
    "line",
    "guid",  # the key column: named as the job's input names it (guid, id, email...)
    "outcome",
    "status",
    "attempts",
    "error",
    "note",
    "fields",
    "changes",
    "record_id",  # CRM: the record's id when found by --match, or given by --create
    "associations",  # associate:OBJECT columns: each link's outcome
)
_KEY_AT: Final = COLUMNS.index("guid")


class RowOutcome(StrEnum):
    """What the report says became of a row (the report's ``outcome`` column)."""

    UPDATED = "updated"
    FAILED = "failed"
    INVALID = "invalid"
    SKIPPED = "skipped"
    NOT_SENT = "not_sent"
    DEFERRED = "deferred"
    UNCONFIRMED = "unconfirmed"  # answered 2xx without saying it was written; not read back
    NOT_FOUND = "not_found"  # no record has the row's key (CRM: its id or --match value)
    CREATED = "created"  # --create: no record had the key; this run made one (record_id)
    ARCHIVED = "archived"  # undo of a created record
    PLANNED = "planned"  # a dry run's word


# Outcomes that make a run's exit code 1.
FAILED_OUTCOMES: Final = (
    RowOutcome.FAILED,
    RowOutcome.INVALID,
    RowOutcome.NOT_SENT,
    RowOutcome.NOT_FOUND,
)

_DONE_AS: Final = {"created": RowOutcome.CREATED, "archive": RowOutcome.ARCHIVED}
_BY_STATE: Final[dict[str, RowOutcome]] = {
    State.DONE: RowOutcome.UPDATED,
    State.FAILED: RowOutcome.FAILED,
    State.NOT_FOUND: RowOutcome.NOT_FOUND,
    State.SKIPPED: RowOutcome.SKIPPED,
    State.DEFERRED: RowOutcome.DEFERRED,
    State.NOT_SENT: RowOutcome.NOT_SENT,
    State.INVALID: RowOutcome.INVALID,
    State.UNCONFIRMED: RowOutcome.UNCONFIRMED,
}
# Every version's reports start so (the key's header aside); later ones add columns.
_FIRST_COLUMNS: Final = (*COLUMNS[:_KEY_AT], None, *COLUMNS[_KEY_AT + 1 : 9])
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")
_to_json: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_NOT_YET: Final = "not sent yet: run the same command again to resume"


def outcome_of(row: ReportRow, *, dry_run: bool = False) -> tuple[str, str | None, str | None]:
    """``(outcome, error, note)`` for one row.

    A row whose every value lost to another row of its lead sent nothing: ``skipped``, its
    note naming the rows that won. A lead still waiting to be sent (the process stopped
    before it, a second Ctrl-C included) is ``deferred``: running the command again sends
    it; ``not_sent`` is kept for a refused token."""
    if row.error is not None:
        return RowOutcome.INVALID, row.error, row.note
    if row.names == "":
        return RowOutcome.SKIPPED, None, row.note
    outcome = _BY_STATE.get(row.state or "")
    if outcome == RowOutcome.UPDATED and row.action in _DONE_AS:
        outcome = _DONE_AS[row.action]
    note = _join(row.note, row.bundle_note)
    if outcome == RowOutcome.SKIPPED:
        return outcome, None, _join(row.reason, note)
    if outcome is not None:
        return outcome, row.reason, note
    if dry_run:
        return RowOutcome.PLANNED, None, note
    return RowOutcome.DEFERRED, row.reason or _NOT_YET, note


def columns_of(store: JobStore) -> tuple[str, ...]:
    """The report's header: its key column named as the job's records are keyed (``guid`` for
    Leads v1, ``id`` or the ``--match`` property for CRM objects; jobs from before keep
    ``guid``)."""
    key = JobMeta.read(store).key_column
    return (*COLUMNS[:_KEY_AT], key, *COLUMNS[_KEY_AT + 1 :])


# A link's outcome in the report's words (any other state: not sent yet).
_LINK_WORDS: Final[dict[str, str]] = {
    State.DONE: "added",
    State.SKIPPED: "already there",
    State.NOT_FOUND: "not found",
    State.FAILED: "failed",
    State.UNCONFIRMED: "unconfirmed",
}
LINK_PROBLEMS: Final = ("not found", "failed", "unconfirmed")  # exit code 1


def link_word(state: str, action: str | None, *, dry_run: bool = False) -> str:
    word = _LINK_WORDS.get(state, "planned" if dry_run else "not sent yet")
    return "removed" if action == "archive" and word == "added" else word


def count_links(store: JobStore) -> Counter[str]:
    """The job's links by the report's word for their outcome."""
    counts: Counter[str] = Counter()
    for (state, action), n in store.links.counts().items():
        counts[link_word(state, action)] += n
    return counts


def _links_cell(row: ReportRow, links: list[LinkRow] | None, *, dry_run: bool) -> str | None:
    """The links a row asked for, each ``companies acme.io (10): added``; an undo's row
    (which names no column) shows the links it removed."""
    if not links or row.error is not None:
        return None
    asked = any(n.startswith(PREFIX) for n in (row.names or "").split(";"))
    if not asked and not all(action == "archive" for *_, action in links):
        return None
    parts = []
    for to_object, value, to_id, state, reason, action in links:
        shown = value if to_id in (None, value) else f"{value} ({to_id})"
        word = link_word(state, action, dry_run=dry_run)
        detail = (
            f" ({reason})" if reason and word not in ("added", "already there", "removed") else ""
        )
        parts.append(f"{to_object} {shown}: {word}{detail}")
    return "; ".join(parts)


def count_outcomes(store: JobStore) -> Counter[str]:
    """Rows by outcome, as the report would show them."""
    return Counter(outcome_of(row)[0] for row in store.report_rows())


def changes_cell(row: ReportRow) -> str:
    """:func:`changes_of` as the report's CSV cell. A row of a job that read nothing, none of
    whose values lost to another row, sent exactly its own changes: its stored JSON is the
    cell, with no parse and no encode (a million-row report makes a million of these)."""
    if row.before is None and row.names and row.names == row.own_names and PREFIX not in row.names:
        return row.fields or "" if row.body not in (None, "{}") else ""
    changes = changes_of(row)
    return _to_json(changes) if changes else ""


def changes_of(row: ReportRow) -> dict[str, object] | None:
    """The values this row's fields send: ``{field: [before, after]}`` when the lead was read
    first, ``{field: value}`` otherwise; None when it sends nothing."""
    if row.error is not None or not row.names or not row.body or row.body == "{}":
        return None
    body = json.loads(row.body)
    names = [name for name in row.names.split(";") if name in body]
    if not names:
        return None
    if row.before is None:
        return {name: body[name] for name in names}
    before = json.loads(row.before)
    return {name: [before.get(name), body[name]] for name in names}


def dialect_for(
    chosen: str | None, input_format: str, delimiter: str | None, bom: bool, encoding: str
) -> dict[str, object]:
    """How the report is written: ``chosen`` (--report-dialect), else like the input (its
    delimiter; a BOM when it had one or was not UTF-8, so that Excel reads the accents)."""
    if chosen == "jsonl":
        return {"format": "jsonl"}
    if chosen is not None:
        return {
            "format": "csv",
            "delimiter": "\t" if chosen == "tsv" else ",",
            "bom": chosen == "excel",
        }
    if input_format == "jsonl":
        return {"format": "csv", "delimiter": ",", "bom": False}
    if input_format == "xlsx":  # the reader is Excel: comma and a BOM, as it saves CSV UTF-8
        return {"format": "csv", "delimiter": ",", "bom": True}
    return {
        "format": "csv",
        "delimiter": delimiter or ",",
        "bom": bom or encoding != "utf-8-sig",
    }


def write_report(store: JobStore, path: Path, *, dry_run: bool = False) -> Counter[str]:
    """Write the report for every row, in the job's report dialect (a ``.jsonl`` path is
    always JSON lines); returns the count of each outcome. A disk that fills up (or a folder
    that goes) leaves the old report as it was and says how to write it again."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        counts = _write_rows(store, tmp, dry_run=dry_run, as_json=_as_json(store, path))
        os.replace(tmp, path)
        job_meta.write(store, {job_meta.WRITTEN: fingerprint(path)})
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        job = JobMeta.read(store).job
        again = (
            f"every outcome is kept in job {job}: free space (or fix the folder), then run "
            f"bulkleads report {job}"
            if job
            else "nothing was sent: free space, then run the dry run again"
        )
        raise ReportError(
            f"could not write the report {path}: {exc.strerror or exc}; {again}"
        ) from None
    except BaseException:  # Ctrl-C while writing: the old report stays, no half file beside it
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return counts


def _as_json(store: JobStore, path: Path) -> bool:
    dialect = JobMeta.read(store).report_dialect or {}
    return path.suffix.lower() in (".jsonl", ".ndjson") or dialect.get("format") == "jsonl"


def _write_rows(store: JobStore, path: Path, *, dry_run: bool, as_json: bool) -> Counter[str]:
    counts: Counter[str] = Counter()
    columns = columns_of(store)
    links = store.links.by_record() if store.links.any() else {}
    dialect = JobMeta.read(store).report_dialect or {}
    encoding = "utf-8-sig" if dialect.get("bom") and not as_json else "utf-8"
    with open(path, "w", encoding=encoding, newline="") as out:
        writer = None if as_json else csv.writer(out, delimiter=str(dialect.get("delimiter", ",")))
        if writer:
            writer.writerow(columns)
        for row in store.report_rows():
            outcome, error, note = outcome_of(row, dry_run=dry_run)
            counts[outcome] += 1
            if writer:
                # Only text that came from the input or a server can start like a formula.
                writer.writerow(
                    (
                        row.row,
                        row.line,
                        _inert(row.guid),
                        outcome,
                        row.status,
                        row.attempts or None,
                        _inert(error),
                        _inert(note),
                        _inert(row.names),
                        changes_cell(row),
                        _inert(row.record_id),
                        _inert(_links_cell(row, links.get(row.guid or ""), dry_run=dry_run)),
                    )
                )
            else:
                values = (
                    row.row,
                    row.line,
                    row.guid,
                    outcome,
                    row.status,
                    row.attempts or None,
                    error,
                    note,
                    row.names or "",
                    changes_of(row),
                    row.record_id,
                    _links_cell(row, links.get(row.guid or ""), dry_run=dry_run),
                )
                out.write(json.dumps(dict(zip(columns, values, strict=True)), ensure_ascii=False))
                out.write("\n")
    return counts


DIFF_COLUMNS: Final = (None, "field", "current", "new")  # None: the key, named per job
ReportDialect = Literal["excel", "csv", "tsv", "jsonl"]


def check_report_path(
    report: Path, inputs: Iterable[Path] = (), *, columns: Columns = _FIRST_COLUMNS
) -> None:
    """Refuse to write a report over a file that is not a report bulkleads wrote.

    The report replaces its path whole, so a path that is the input (by name, symlink or hard
    link: compared by device and inode) or any other file of the user's would be lost. An
    empty file holds nothing to lose (``mktemp`` makes one), so it may be written."""
    check_regular(report, "--report" if columns is _FIRST_COLUMNS else "the diff file")
    if not report.exists():
        return
    for source in inputs:
        if source.exists() and os.path.samefile(report, source):
            raise UsageError(
                f"the report path {report} is the input file {source}: writing the report "
                "would destroy the input; pass --report with another path"
            )
    if report.stat().st_size and not is_report(report, columns):
        raise UsageError(
            f"{report} exists and is not a bulkleads report; it would be overwritten. "
            "Pass --report with another path, or move the file away first"
        )


def is_report(path: Path, columns: Columns = _FIRST_COLUMNS) -> bool:
    """Whether ``path`` starts like a report (or, given its ``columns``, a diff file)
    bulkleads writes: a CSV header or a JSON line (``None`` in ``columns``: any key's name).
    Only a regular file is looked at: reading the start of a pipe (``<(zcat x.gz)``, a FIFO)
    would take it from the run."""
    try:
        if not path.is_file():
            return False
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    first = head.removeprefix(b"\xef\xbb\xbf").split(b"\n", 1)[0].strip()
    text = first.decode("utf-8", "replace")
    if text.startswith("{"):
        try:
            keys = tuple(json.loads(text))
        except (ValueError, RecursionError):
            return False
        return _starts_as(keys, columns)
    return any(_starts_as(tuple(text.split(d)), columns) for d in ",;\t")


def _starts_as(header: tuple[object, ...], columns: Columns) -> bool:
    return len(header) >= len(columns) and all(
        isinstance(found, str) and found.strip() != "" if want is None else found == want
        for found, want in zip(header, columns, strict=False)
    )


def diff_path(report: Path) -> Path:
    """The diff file beside a report: ``x.report.csv`` -> ``x.diff.csv``."""
    return report.with_name(report.name.removesuffix(".csv").removesuffix(".report") + ".diff.csv")


def write_diff(
    store: JobStore, path: Path, among: frozenset[str] | None = None
) -> dict[str, tuple[int, int, int]]:
    """One line per field a read record would change (key, field, current, new), in input
    order; returns ``{field: (to change, already so, changed since the job)}`` over every lead
    read (the last for an undo: leads it skips, which hold neither value), or over those
    ``among`` a dry run's sample: a projection counts exactly what the sample read."""
    counts: dict[str, list[int]] = {}
    changed = store.changed_since()
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow((columns_of(store)[_KEY_AT], *DIFF_COLUMNS[1:]))
        for guid, body, before in store.reads(among):
            for name, current in (before or {}).items():
                changing = name in body
                bucket = 2 if guid in changed else 0 if changing else 1
                counts.setdefault(name, [0, 0, 0])[bucket] += 1
                if changing:
                    writer.writerow((_inert(guid), _inert(name), _cell(current), _cell(body[name])))
    os.replace(tmp, path)
    return {name: (n[0], n[1], n[2]) for name, n in counts.items()}


def _cell(value: object) -> str:
    """A value as text: strings as they are, anything else as JSON (true, 0, null)."""
    return _inert(value) if isinstance(value, str) else _to_json(value)


def _inert(value: str | None) -> str:
    """A cell a spreadsheet shows as text: formula-like strings get a leading apostrophe."""
    if not value:
        return ""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _join(*parts: str | None) -> str | None:
    text = "; ".join(p for p in parts if p)
    return text or None


def exit_code(
    counts: Counter[str], stats: SendStats | None, links: Counter[str] | None = None
) -> int:
    """3 when anything is left to send (rows or links), else 1 when a row or link failed,
    was not found or stays unconfirmed, else 0."""
    links = links or Counter()
    if (
        counts[RowOutcome.DEFERRED]
        or links["not sent yet"]
        or (stats is not None and stats.stop_reason in ("daily", "signal"))
    ):
        return EXIT_STOPPED
    if any(counts[outcome] for outcome in (*FAILED_OUTCOMES, RowOutcome.UNCONFIRMED)) or any(
        links[word] for word in LINK_PROBLEMS
    ):
        return EXIT_ROWS_FAILED
    return EXIT_OK
