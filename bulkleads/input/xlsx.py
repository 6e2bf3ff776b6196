"""An ``.xlsx`` workbook as input, streamed with openpyxl's read-only mode.

Exported spreadsheets are often workbooks, and asking users to re-export them as CSV loses what
a workbook knows: which cells are numbers, which are text (a zip code ``02134`` typed as text
keeps its zero) and which are dates. One sheet (the first, or ``--sheet NAME``) is read row by
row, so memory stays flat however many rows it has. Cells become the text a CSV cell would hold:
an Excel date becomes ISO 8601 (so a date field takes it as a date), a whole number is written
without ``.0``, a formula is read as its cached value (the value Excel last computed); a formula
with none (a workbook written by a tool and never saved by Excel) makes its row invalid rather
than an empty cell. ``line`` is Excel's row number, so the report points at the row a person
sees. The workbook's shared strings are read whole by openpyxl, so their size is capped
(:data:`MAX_SHARED_STRINGS`, as the zip declares it; zipfile never inflates past that).
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from collections.abc import Iterator
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Final
from xml.etree.ElementTree import ParseError

from bulkleads.errors import InputError
from bulkleads.input.text import Format, Record

_CHUNK: Final = 1 << 20
MAX_SHARED_STRINGS: Final = 128 << 20  # bytes of sharedStrings.xml, uncompressed
_FORMULA: Final = re.compile(rb"<(?:\w+:)?f[\s>/]")


class XlsxFile:
    """An open workbook sheet, shaped like :class:`bulkleads.input.text.InputFile`."""

    format: Format = "xlsx"
    encoding = "utf-8-sig"  # what the report is written in when it follows the input
    encoding_label = None
    delimiter = None
    had_bom = False

    def __init__(self, path: str, *, sheet: str | None = None) -> None:
        from openpyxl import load_workbook  # only a workbook input pays for its import

        self.path = path
        self._formula_book: Any = None
        file = Path(path)
        try:
            self.total_bytes: int | None = file.stat().st_size
            self.content_hash = _hash(file)
            _check_shared_strings(path)
            self._book = load_workbook(path, read_only=True, data_only=True)
        except (OSError, zipfile.BadZipFile, KeyError, ValueError) as exc:
            raise InputError(f"cannot read the workbook {path}: {exc}") from None
        names = self._book.sheetnames
        if sheet is not None and sheet not in names:
            self.close()
            raise InputError(
                f"{path} has no sheet {sheet!r}; its sheets: {', '.join(map(repr, names))}"
            )
        self.sheet = sheet or names[0]
        # cells, not values: a number's format says what the sheet shows (02139 for 2139)
        self._rows = self._book[self.sheet].iter_rows()
        self._formulas = self._formula_rows(path)
        self.bytes_read = 0
        self.header = self._read_header()

    def __enter__(self) -> XlsxFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._book.close()
        if self._formula_book is not None:
            self._formula_book.close()

    def _formula_rows(self, path: str) -> Iterator[tuple[Any, ...]] | None:
        """The sheet's rows as formulas, when it has any: read beside the values, so that a
        formula with no cached value is told from an empty cell (openpyxl gives None for
        both). A sheet without formulas is read once."""
        from openpyxl import load_workbook

        sheet_path = getattr(self._book[self.sheet], "_worksheet_path", None)
        if sheet_path is None or not _has_formulas(path, str(sheet_path)):
            return None
        self._formula_book = load_workbook(path, read_only=True, data_only=False)
        rows = self._formula_book[self.sheet].iter_rows(values_only=True)
        next(rows, None)  # the header row
        return rows

    def _read_header(self) -> list[str]:
        try:
            first = next(self._rows, None)
        except (ParseError, zipfile.BadZipFile, KeyError, ValueError) as exc:
            self.close()
            raise InputError(f"the workbook {self.path} is damaged: {exc}") from None
        if first is None or not any(cell.value not in (None, "") for cell in first):
            self.close()
            raise InputError(f"sheet {self.sheet!r} of {self.path} is empty: it needs a header row")
        header = [cell_text(cell.value) for cell in first]
        while header and not header[-1]:
            header.pop()  # Excel's used range often runs past the last named column
        blank = [i + 1 for i, name in enumerate(header) if not name.strip()]
        if blank:
            self.close()
            raise InputError(
                f"sheet {self.sheet!r}: column {blank[0]} of the header row is empty (or part "
                "of a merged cell); give every column its own name",
                line=1,
            )
        return header

    def records(self) -> Iterator[Record]:
        """Data rows in sheet order: ``row`` counts them from 1, ``line`` is Excel's row."""
        try:
            yield from self._records()
        except (ParseError, zipfile.BadZipFile, KeyError, ValueError) as exc:
            raise InputError(f"the workbook {self.path} is damaged: {exc}") from None

    def _unreadable(
        self, raw: list[object], values: list[str], uncomputed: list[int]
    ) -> str | None:
        """Why a row's cells do not hold what was typed, or None: a number past a spreadsheet's
        15 digits, or a formula no program computed."""
        i = next((i for i, value in enumerate(raw) if _beyond_precision(value)), None)
        if i is not None:
            return (
                f"{self._column(i)!r} holds a {len(values[i].lstrip('-'))}-digit number, longer "
                "than the 15 digits a spreadsheet number keeps (Excel shows "
                f"{raw[i]:.15g}): the digits after the 15th are not the ones typed. "
                "Format the column as text and enter the values again (or export them as "
                "text from their source)"
            )
        if uncomputed:
            return (
                f"{self._column(uncomputed[0])!r} holds a formula with no computed value (the "
                "workbook was written by a program and not saved in Excel since): open and save "
                "it in Excel, or export the sheet as CSV"
            )
        return None

    def _column(self, i: int) -> str:
        return self.header[i] if i < len(self.header) else f"column {i + 1}"

    def _records(self) -> Iterator[Record]:
        width = len(self.header)
        row = 0
        for line, cells in enumerate(self._rows, start=2):
            formulas = next(self._formulas, ()) if self._formulas is not None else ()
            raw = [cell.value for cell in cells]
            values = [cell_text(v, cell.number_format) for v, cell in zip(raw, cells, strict=True)]
            uncomputed = [
                i
                for i, (value, formula) in enumerate(zip(raw, formulas, strict=False))
                if value is None and isinstance(formula, str) and formula.startswith("=")
            ]
            if not any(v.strip() for v in values) and not uncomputed:
                continue
            row += 1
            unreadable = self._unreadable(raw, values, uncomputed)
            if unreadable is not None:
                yield Record(row, line, None, unreadable)
                continue
            extra = [v for v in values[width:] if v.strip()]
            if extra:
                yield Record(
                    row,
                    line,
                    None,
                    f"has a value in column {width + 1} or after, which has no header",
                )
                continue
            values += [""] * (width - len(values))
            yield Record(row, line, dict(zip(self.header, values[:width], strict=True)))
        self.bytes_read = self.total_bytes or 0


def cell_text(cell: Any, number_format: str | None = None) -> str:
    """A cell as the text a CSV export would hold (dates in ISO 8601, 3.0 as 3); a whole
    number under a format of zero placeholders (``00000``, ``00000-0000``, ``000-00-0000``)
    as the sheet shows it, leading zeros and separators included: what the sheet shows is
    what the user means."""
    if cell is None:
        return ""
    if number_format and _whole(cell) and (shown := _zero_padded(int(cell), number_format)):
        return shown
    if isinstance(cell, bool):
        return "true" if cell else "false"
    if isinstance(cell, datetime):
        return cell.date().isoformat() if cell.time() == time() else cell.isoformat()
    if isinstance(cell, date | time):
        return cell.isoformat()
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell)


# 0 placeholders and literal separators only ("." is the decimal point, not a separator)
_ZERO_FORMAT: Final = re.compile(r"(?:0|\\.|[-\s/()])+")
_SIGNIFICANT: Final = 15  # digits a spreadsheet number keeps (Excel's precision)


def _whole(value: object) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, float) and value.is_integer()
    )


def _zero_padded(number: int, number_format: str) -> str | None:
    """``number`` as a format made only of ``0`` placeholders and literal separators shows
    it (None for any other format: #, decimals, sections, text are shown as General)."""
    if number < 0 or "0" not in number_format or not _ZERO_FORMAT.fullmatch(number_format):
        return None
    slots = number_format.count("0")
    digits = str(number).rjust(slots, "0")
    if len(digits) > slots:  # wider than the format: Excel shows the extra digits first
        number_format = "0" * (len(digits) - slots) + number_format
    out, taken, escaped = [], iter(digits), False
    for char in number_format:
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            out.append(next(taken) if char == "0" else char)
    return "".join(out)


def _beyond_precision(value: object) -> bool:
    """A whole number with more significant digits than a spreadsheet keeps: its last digits
    are not the ones typed (1234567890123456789 is held as ...456800), so it cannot be sent
    as the user's value."""
    if not (_whole(value) and isinstance(value, int | float)):
        return False
    return len(str(abs(int(value))).rstrip("0")) > _SIGNIFICANT


def _hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _check_shared_strings(path: str) -> None:
    """Refuse a workbook whose shared strings openpyxl would hold whole past the cap (a 2 MB
    file can declare gigabytes of them)."""
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            shared = info.filename.lower().endswith("sharedstrings.xml")
            if shared and info.file_size > MAX_SHARED_STRINGS:
                raise InputError(
                    f"the workbook {path} holds {info.file_size >> 20} MiB of text in its "
                    f"shared strings; bulkleads reads at most {MAX_SHARED_STRINGS >> 20} "
                    "MiB of them: export the sheet as CSV (read as a stream, no cap)"
                )


def _has_formulas(path: str, member: str) -> bool:
    """Whether the sheet's XML holds a formula element, scanned as bytes (a tenth of the
    cost of parsing it)."""
    tail = b""
    with zipfile.ZipFile(path) as archive, archive.open(member.lstrip("/")) as sheet:
        while chunk := sheet.read(_CHUNK):
            if _FORMULA.search(tail + chunk):
                return True
            tail = chunk[-16:]
    return False
