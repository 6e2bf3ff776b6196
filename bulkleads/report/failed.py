"""The rows a run left not done, back in the operator's own file: ``closes.failed.csv`` beside
``closes.report.csv``, in the input's format, with the input's columns, spelling and bytes, and
two columns at the end, ``error`` (why, in words a user can act on) and ``outcome``.

The workflow is "open it, fix the cells, run it": ``bulkleads update closes.failed.csv`` with
the job's flags sends those rows alone (the planner takes ``error`` and ``outcome`` at the end
of a header for ours, never for fields). A CSV keeps its delimiter, encoding, BOM and line
endings, and each row its own text as read (quoting included); a JSON line keeps its text with
the two keys added before its closing brace; a workbook gets a sheet of the cells as read.

The rows are the input's own, read again: a job planned from stdin, or whose input has
changed or gone since, gets no file (its report still lists every row), and says so.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Final

from bulkleads.errors import InputError
from bulkleads.input.text import InputFile, Record
from bulkleads.input.xlsx import XlsxFile
from bulkleads.jobstore.meta import JobMeta
from bulkleads.jobstore.store import JobStore
from bulkleads.plan.columns import FAILED_COLUMNS
from bulkleads.report.paths import check_regular
from bulkleads.report.rows import RowOutcome, link_word, outcome_of

COLUMNS: Final = FAILED_COLUMNS  # what we add at the end of the input's header
NOT_DONE: Final = frozenset(
    {RowOutcome.INVALID, RowOutcome.FAILED, RowOutcome.NOT_FOUND, RowOutcome.UNCONFIRMED}
)
_LINKS_NOT_MADE: Final = "links not made"
_SUFFIXES: Final = (".csv", ".tsv", ".jsonl", ".ndjson", ".xlsx", ".xlsm", ".txt")


def failed_path(report: Path, meta: JobMeta) -> Path:
    """``closes.report.csv`` -> ``closes.failed.csv`` (the input's own ending: ``.xlsx`` for a
    workbook, ``.jsonl`` for JSON lines)."""
    stem = report.name
    for ending in (".csv", ".jsonl", ".report", ".dry-run", ".undo"):
        stem = stem.removesuffix(ending)
    name = Path(meta.input).name.removesuffix(".gz")
    suffix = next((s for s in _SUFFIXES if name.lower().endswith(s)), ".csv")
    stem = stem.removesuffix(".gz").removesuffix(suffix)
    return report.with_name(f"{stem}.failed{suffix}")


def not_done(store: JobStore) -> dict[int, tuple[str, str]]:
    """``{row: (outcome, error)}`` of every row the job has not done: invalid, failed, not
    found, unconfirmed, or done but with links not made."""
    links = store.links.by_record() if store.links.any() else {}
    rows: dict[int, tuple[str, str]] = {}
    for row in store.report_rows():
        outcome, error, _ = outcome_of(row)
        if outcome in NOT_DONE:
            rows[row.row] = (str(outcome), error or str(outcome))
            continue
        lost = [
            f"{to_object} {value}: {word}" + (f" ({reason})" if reason else "")
            for to_object, value, _, state, reason, action in links.get(row.guid or "", [])
            if (word := link_word(state, action)) in ("failed", "not found", "unconfirmed")
        ]
        if lost and row.error is None:
            rows[row.row] = (_LINKS_NOT_MADE, "; ".join(lost))
    return rows


def write_failed_rows(store: JobStore, report: Path) -> tuple[Path | None, str | None]:
    """Write the job's rows not done beside its report (and remove a stale file of ours when
    every row is done). Returns the file written, and why none could be when rows are not
    done but the input cannot give them back."""
    meta = JobMeta.read(store)
    path = failed_path(report, meta)
    rows = not_done(store)
    if not rows:
        if _ours(path):
            path.unlink()
        return None, None
    source = meta.input_path
    if meta.input == "-" or not source or not Path(source).is_file():
        return None, "the input cannot be read again (stdin, or moved): the report lists them"
    check_regular(path, "the failed rows' file")
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        same = _write(tmp, Path(source), meta, rows)
        if not same:
            tmp.unlink()
            return None, "the input has changed since the job read it: the report lists them"
        os.replace(tmp, path)
    except (OSError, InputError) as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        return None, f"it could not be written ({exc}): the report lists them"
    return path, None


def _write(tmp: Path, source: Path, meta: JobMeta, rows: Mapping[int, tuple[str, str]]) -> bool:
    """Write ``rows`` of ``source`` to ``tmp``; False when the input is not the job's."""
    dialect = meta.input_dialect or {}
    fmt = dialect.get("format")
    if fmt == "xlsx":
        sheet = dialect.get("sheet")
        with XlsxFile(str(source), sheet=sheet if isinstance(sheet, str) else None) as book:
            return _write_xlsx(tmp, book, rows, meta)
    encoding = str(dialect.get("encoding") or "utf-8")
    delimiter = dialect.get("delimiter")
    # read as the job read it; written with a BOM only when the input had one
    written = "utf-8" if encoding == "utf-8-sig" and not dialect.get("bom") else encoding
    with InputFile(
        str(source),
        fmt=fmt if fmt in ("csv", "tsv", "jsonl") else None,
        encoding=encoding,
        delimiter=delimiter if isinstance(delimiter, str) else None,
    ) as text:
        with open(tmp, "w", encoding=written, errors="replace", newline="") as out:
            if text.format == "jsonl":
                _write_jsonl(out, text.raw_records(), rows)
            else:
                _write_csv(out, text, rows)
        return text.content_hash == meta.content_hash


def _write_csv(out: io.TextIOBase, text: InputFile, rows: Mapping[int, tuple[str, str]]) -> None:
    delimiter = text.delimiter or ","
    out.write(_extended(text.header_text, COLUMNS, delimiter))
    for record in text.raw_records():
        if record.row in rows and record.text is not None:
            out.write(_extended(record.text, rows[record.row][::-1], delimiter))


def _extended(line: str, cells: tuple[str, ...] | list[str], delimiter: str) -> str:
    """``line`` (a CSV record as read, its ending kept) with ``cells`` appended."""
    body = line.rstrip("\r\n")
    ending = line[len(body) :] or "\r\n"
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="").writerow(list(cells))
    return f"{body}{delimiter}{buffer.getvalue()}{ending}"


def _write_jsonl(
    out: io.TextIOBase, records: Iterator[Record], rows: Mapping[int, tuple[str, str]]
) -> None:
    for record in records:
        if record.row not in rows or record.text is None:
            continue
        outcome, error = rows[record.row]
        body = record.text.rstrip("\r\n")
        ending = record.text[len(body) :] or "\n"
        added = f'"error": {json.dumps(error)}, "outcome": {json.dumps(outcome)}'
        if record.values is not None and body.rstrip().endswith("}"):
            inside = body.rstrip()[:-1].rstrip()
            joint = "" if inside.endswith("{") else ", "
            out.write(f"{inside}{joint}{added}}}{ending}")
        else:  # not a JSON object: the line as read, its reason beside it
            out.write(json.dumps({"line": body, "error": error, "outcome": outcome}) + ending)


def _write_xlsx(
    tmp: Path, book: XlsxFile, rows: Mapping[int, tuple[str, str]], meta: JobMeta
) -> bool:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(book.sheet)
    sheet.append([*book.header, *COLUMNS])
    for record in book.records():
        if record.row in rows:
            values = record.values or {}
            outcome, error = rows[record.row]
            sheet.append([*(values.get(name, "") for name in book.header), error, outcome])
    workbook.save(tmp)
    return book.content_hash == meta.content_hash


def _ours(path: Path) -> bool:
    """Whether ``path`` is a failed rows' file this tool wrote (its header ends with ours)."""
    if not path.is_file():
        return False
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return path.name.endswith((".failed.xlsx", ".failed.xlsm"))
    with contextlib.suppress(OSError, UnicodeDecodeError):
        with open(path, encoding="utf-8", errors="replace") as f:
            first = f.readline()
        if path.suffix.lower() in (".jsonl", ".ndjson"):
            return '"outcome":' in first
        return first.rstrip("\r\n").endswith(("error,outcome", "error;outcome", "error\toutcome"))
    return False
