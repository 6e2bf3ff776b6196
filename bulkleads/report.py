"""The report: one line per input row, in input order, generated from the job store.

It is written as a stream (a cursor over the store, never the whole job in memory) into a
temporary file that replaces the old report only when complete, so a kill while writing leaves
the previous report intact. CSV cells that a spreadsheet would run as a formula are made inert.
"""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from pathlib import Path
from typing import Final

from .store import DEFERRED, DONE, FAILED, INVALID, NOT_SENT, SKIPPED, JobStore, ReportRow

COLUMNS: Final = ("row", "line", "guid", "outcome", "status", "attempts", "error", "note", "fields")
_BY_STATE: Final = {
    DONE: "updated",
    FAILED: "failed",
    SKIPPED: "skipped",
    DEFERRED: "deferred",
    NOT_SENT: "not_sent",
    INVALID: "invalid",
}
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")
_NOT_YET: Final = "not sent yet: run the same command again to resume"


def outcome_of(row: ReportRow, *, dry_run: bool = False) -> tuple[str, str | None, str | None]:
    """``(outcome, error, note)`` for one row."""
    if row.error is not None:
        return "invalid", row.error, row.note
    outcome = _BY_STATE.get(row.state or "")
    if outcome == "skipped":
        return outcome, None, _join(row.reason, row.note)
    if outcome is not None:
        return outcome, row.reason, row.note
    if dry_run:
        return "planned", None, row.note
    return "not_sent", row.reason or _NOT_YET, row.note


def write_report(store: JobStore, path: Path, *, dry_run: bool = False) -> Counter[str]:
    """Write the report for every row; returns the count of each outcome."""
    counts: Counter[str] = Counter()
    tmp = path.with_name(f".{path.name}.tmp")
    as_json = path.suffix.lower() in (".jsonl", ".ndjson")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(tmp, "w", encoding="utf-8", newline="") as out:
        writer = None if as_json else csv.writer(out)
        if writer:
            writer.writerow(COLUMNS)
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
                )
                out.write(json.dumps(dict(zip(COLUMNS, values, strict=True)), ensure_ascii=False))
                out.write("\n")
    os.replace(tmp, path)
    return counts


def _inert(value: str | None) -> str:
    """A cell a spreadsheet shows as text: formula-like strings get a leading apostrophe."""
    if not value:
        return ""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _join(*parts: str | None) -> str | None:
    text = "; ".join(p for p in parts if p)
    return text or None
