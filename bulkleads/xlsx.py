"""An ``.xlsx`` workbook as input, streamed with openpyxl's read-only mode.

Exported spreadsheets are often workbooks, and asking users to re-export them as CSV loses what
a workbook knows: which cells are numbers, which are text (a zip code ``02134`` typed as text
keeps its zero) and which are dates. One sheet (the first, or ``--sheet NAME``) is read row by
row, so memory stays flat however many rows it has. Cells become the text a CSV cell would hold:
an Excel date becomes ISO 8601 (so a date field takes it as a date), a whole number is written
without ``.0``, a formula is read as its cached value (the value Excel last computed). ``line``
is Excel's row number, so the report points at the row a person sees.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Iterator
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Final
from xml.etree.ElementTree import ParseError

from .errors import InputError
from .sources import Format, Record

_CHUNK: Final = 1 << 20


class XlsxFile:
    """An open workbook sheet, shaped like :class:`bulkleads.sources.InputFile`."""

    format: Format = "xlsx"
    encoding = "utf-8-sig"  # what the report is written in when it follows the input
    encoding_label = None
    delimiter = None
    had_bom = False

    def __init__(self, path: str, *, sheet: str | None = None) -> None:
        from openpyxl import load_workbook  # only a workbook input pays for its import

        self.path = path
        file = Path(path)
        try:
            self.total_bytes: int | None = file.stat().st_size
            self.content_hash = _hash(file)
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
        self._rows = self._book[self.sheet].iter_rows(values_only=True)
        self.bytes_read = 0
        self.header = self._read_header()

    def __enter__(self) -> XlsxFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._book.close()

    def _read_header(self) -> list[str]:
        try:
            first = next(self._rows, None)
        except (ParseError, zipfile.BadZipFile, KeyError, ValueError) as exc:
            self.close()
            raise InputError(f"the workbook {self.path} is damaged: {exc}") from None
        if first is None or not any(cell not in (None, "") for cell in first):
            self.close()
            raise InputError(f"sheet {self.sheet!r} of {self.path} is empty: it needs a header row")
        header = [cell_text(cell) for cell in first]
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

    def _records(self) -> Iterator[Record]:
        width = len(self.header)
        row = 0
        for line, cells in enumerate(self._rows, start=2):
            values = [cell_text(cell) for cell in cells]
            if not any(v.strip() for v in values):
                continue
            row += 1
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


def cell_text(cell: Any) -> str:
    """A cell as the text a CSV export would hold (dates in ISO 8601, 3.0 as 3)."""
    if cell is None:
        return ""
    if isinstance(cell, bool):
        return "true" if cell else "false"
    if isinstance(cell, datetime):
        return cell.date().isoformat() if cell.time() == time() else cell.isoformat()
    if isinstance(cell, date | time):
        return cell.isoformat()
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell)


def _hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
