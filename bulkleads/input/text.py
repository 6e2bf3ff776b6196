"""Turn an input file into a stream of records: row number, physical line, raw values.

Knows encodings, BOMs, delimiters, quoting and compression; knows nothing about HubSpot. The file
is read once, as a stream, so memory stays flat however large it is; the bytes read are hashed on
the way (a job is identified by its input's content) and counted (progress on big files).

``row`` is the 1-based index of a data record (CSV: the first record after the header is 1;
JSONL: the first non-blank line is 1). ``line`` is the physical line where the record starts.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
import json
import os
import sys
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final, Literal, Protocol

from bulkleads.errors import InputError

Format = Literal["csv", "tsv", "jsonl", "xlsx"]
_SUFFIXES: Final[dict[str, Format]] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
_DELIMITERS: Final = ",;\t|"
_GZIP_MAGIC: Final = b"\x1f\x8b"
_ZIP_MAGIC: Final = b"PK\x03\x04"
# HubSpot's longest text field takes 65,536 characters; a cell far beyond that is not data.
MAX_CELL: Final = 1024 * 1024
csv.field_size_limit(MAX_CELL)
# A physical line: many cells, each within MAX_CELL. Past this it is not a spreadsheet's
# record (a binary file, /dev/zero, a file with no line breaks): the run stops, memory flat.
MAX_LINE: Final = 16 * MAX_CELL
_CELL_TOO_LARGE: Final = (
    f"a cell is larger than {MAX_CELL // 1024} KiB, far beyond any HubSpot field; check the "
    "quoting of this record (an unclosed quote swallows the rest)"
)


@dataclass(frozen=True, slots=True)
class Record:
    """One input record. ``values`` is None when the record itself is unreadable (``error``)."""

    row: int
    line: int
    values: dict[str, object] | None
    error: str | None = None
    text: str | None = None  # the record's own text, as read (only when asked: raw_records)


class Source(Protocol):
    """What planning reads: an input file, or another job's backups (``bulkleads undo``)."""

    format: Format
    header: list[str]
    path: str  # where it is read from ("" when it is no file)

    @property
    def encoding_label(self) -> str | None: ...

    @property
    def bytes_read(self) -> int: ...

    def records(self) -> Iterator[Record]: ...


class _PassThrough(io.RawIOBase):
    """A raw stream over ``inner`` that shows every chunk read to :meth:`_seen`."""

    def __init__(self, inner: IO[bytes]) -> None:
        self._inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        if n:
            self._seen(data)
        return n

    def _seen(self, data: bytes) -> None:
        raise NotImplementedError


class _Tap(_PassThrough):
    """Hashes and counts the bytes passing through it."""

    def __init__(self, inner: IO[bytes]) -> None:
        super().__init__(inner)
        self.digest = hashlib.sha256()
        self.count = 0

    def _seen(self, data: bytes) -> None:
        self.digest.update(data)
        self.count += len(data)


class _Utf8Probe(_PassThrough):
    """Notes whether the bytes passing are all UTF-8 with some non-ASCII text: read with
    another encoding, such a file would send mojibake (``José`` as ``JosÃ©``)."""

    def __init__(self, inner: IO[bytes]) -> None:
        super().__init__(inner)
        self._decoder: codecs.IncrementalDecoder | None = codecs.getincrementaldecoder("utf-8")()
        self.non_ascii: bytes | None = None  # the first non-ASCII UTF-8 sequence seen

    def _seen(self, data: bytes) -> None:
        if self._decoder is None:
            return
        try:
            text = self._decoder.decode(data)
        except UnicodeDecodeError:
            self._decoder = None  # not UTF-8: the other encoding is the right reading
            return
        if self.non_ascii is None and not text.isascii():
            self.non_ascii = next(c for c in text if not c.isascii()).encode()

    def is_utf8_text(self) -> bool:
        """All bytes so far were UTF-8, and some were not ASCII."""
        return self._decoder is not None and self.non_ascii is not None


class InputFile:
    """An open input: its format, its header (CSV), and an iterator of records.

    Use as a context manager. ``bytes_read`` and ``total_bytes`` (None for stdin) drive
    progress; ``content_hash`` is final once the records are exhausted.
    """

    def __init__(
        self,
        path: str,
        *,
        fmt: Format | None = None,
        encoding: str = "auto",
        delimiter: str | None = None,
    ) -> None:
        self.path = path
        self.encoding = "auto" if encoding == "auto" else _check_encoding(encoding)
        self._probe: _Utf8Probe | None = None
        self._raw: IO[bytes] = sys.stdin.buffer if path == "-" else _open(path)
        try:
            self._start(path, fmt, delimiter)
        except _DAMAGED as exc:
            self.close()
            raise InputError(_damaged_message(path, exc)) from None
        except BaseException:
            self.close()
            raise

    def _start(self, path: str, fmt: Format | None, delimiter: str | None) -> None:
        self.total_bytes: int | None = None if path == "-" else Path(path).stat().st_size
        self._tap = _Tap(self._raw)
        buffered = io.BufferedReader(self._tap, 1 << 20)
        head = buffered.peek(4)[:4]
        if head.startswith(_ZIP_MAGIC) or path.lower().endswith((".xls", ".ods")):
            raise InputError(
                f"{path} looks like a spreadsheet workbook that is not .xlsx; save it as "
                "Excel Workbook (.xlsx) or export it as CSV (File > Save As > CSV UTF-8)"
            )
        binary: IO[bytes] = buffered
        if head.startswith(_GZIP_MAGIC):
            binary = gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[assignment]
        self.format: Format = fmt or _format_from_name(path) or _sniff_format(binary)
        peek = getattr(binary, "peek", None)
        self.had_bom = peek is not None and peek(3)[:3] == b"\xef\xbb\xbf"
        self.encoding_chosen = self.encoding == "auto"
        if self.encoding_chosen:
            self.encoding = _guess_encoding(binary)
        if self.encoding != "utf-8-sig":  # any other reading of UTF-8 text is mojibake
            self._probe = _Utf8Probe(binary)
            binary = io.BufferedReader(self._probe, 1 << 16)
        self._text = io.TextIOWrapper(binary, encoding=self.encoding, newline="")
        self.header: list[str] = []
        self.delimiter = "\t" if self.format == "tsv" else delimiter
        if self.format != "jsonl":
            self._read_header()

    # -- lifecycle --------------------------------------------------------------------------
    def __enter__(self) -> InputFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._raw is not sys.stdin.buffer:
            self._raw.close()

    @property
    def bytes_read(self) -> int:
        return self._tap.count

    @property
    def content_hash(self) -> str:
        return self._tap.digest.hexdigest()

    # -- reading ----------------------------------------------------------------------------
    def raw_records(self) -> Iterator[Record]:
        """:meth:`records`, each with its own text as read (line endings and quoting
        included): the failed rows go back to the operator byte for byte."""
        return self.records(keep_text=True)

    def records(self, *, keep_text: bool = False) -> Iterator[Record]:
        """Every record in file order; decoding and structural errors stop with InputError."""
        inner = self._jsonl_records() if self.format == "jsonl" else self._csv_records(keep_text)
        try:
            yield from inner
        except UnicodeDecodeError as exc:
            raise InputError(self._decode_message(exc), line=self._bad_line()) from None
        except _DAMAGED as exc:
            raise InputError(_damaged_message(self.path, exc)) from None
        if self._probe is not None and self._probe.is_utf8_text():
            assert self._probe.non_ascii is not None
            char = self._probe.non_ascii.decode()
            raise InputError(
                f"{self.path} is UTF-8 text (it holds {char!r}), but --encoding "
                f"{self.encoding} would read {char!r} as "
                f"{self._probe.non_ascii.decode(self.encoding, 'replace')!r} and send that; "
                "drop --encoding (auto detects UTF-8) or pass --encoding utf-8"
            )
        # Drain what the text layer did not need (a trailing newline) so the hash is complete.
        while self._tap.readinto(bytearray(1 << 16)):
            pass

    def _lines(self) -> Iterator[str]:
        """The text's lines, each read at most :data:`MAX_LINE` characters at a time: a line
        longer than that stops the run naming it, before memory grows with it."""
        number = 0
        while line := self._text.readline(MAX_LINE + 1):
            number += 1
            if len(line) > MAX_LINE:
                where = self._header_lines + number if self.format != "jsonl" else number
                if self.format != "jsonl" and (self.delimiter or ",") not in line[-MAX_CELL:]:
                    raise InputError(_CELL_TOO_LARGE, line=where)  # one cell runs on and on
                raise InputError(
                    f"a line is longer than {MAX_LINE // MAX_CELL} MiB: not a record of a "
                    "spreadsheet export (a binary file, or a file with no line breaks?)",
                    line=where,
                )
            yield line

    def _read_header(self) -> None:
        try:
            first = self._text.readline(MAX_LINE + 1)
            if len(first) > MAX_LINE:
                raise InputError(
                    f"the first line is longer than {MAX_LINE // MAX_CELL} MiB: not a header "
                    "row (a binary file, or a file with no line breaks?)",
                    line=1,
                )
        except UnicodeDecodeError as exc:
            raise InputError(self._decode_message(exc), line=self._bad_line()) from None
        except _DAMAGED as exc:
            raise InputError(_damaged_message(self.path, exc)) from None
        if not first.strip():
            raise InputError(f"{self.path} is empty: a CSV needs a header row naming the columns")
        if self.delimiter is None:
            self.delimiter = _sniff_delimiter(first)
        while first.count('"') % 2:  # a quoted header cell holding a newline
            more = self._text.readline()
            if not more:
                break
            first += more
        self._header_lines = first.count("\n") or 1
        self.header_text = first  # as read, for the failed rows' file
        try:
            self.header = next(csv.reader([first], delimiter=self.delimiter, strict=True))
        except csv.Error as exc:
            raise InputError(f"the header row cannot be parsed: {exc}", line=1) from None
        counts = Counter(name.strip().lower() for name in self.header if name.strip())
        dupes = sorted({n.strip() for n in self.header if counts[n.strip().lower()] > 1})
        if dupes:
            raise InputError(
                "duplicate column names in the header: "
                + ", ".join(dupes)
                + "; rename or remove the extra columns (or --ignore-column one of them)",
                line=1,
            )

    def _csv_records(self, keep_text: bool = False) -> Iterator[Record]:
        header = self.header
        width = len(header)
        blank = [i for i, name in enumerate(header) if not name.strip()]
        taken: list[str] = []  # the lines of the record being read (csv reads no further)
        lines = _keeping(self._lines(), taken) if keep_text else self._lines()
        reader = csv.reader(lines, delimiter=self.delimiter or ",", strict=False)
        offset = self._header_lines
        row = 0
        prev = 0
        try:
            for cells in reader:
                line = offset + prev + 1
                prev = reader.line_num
                text = "".join(taken) if keep_text else None
                taken.clear()
                if not cells or (len(cells) == 1 and not cells[0].strip() and width > 1):
                    continue
                row += 1
                if len(cells) != width:
                    yield Record(
                        row,
                        line,
                        None,
                        f"has {len(cells)} cells but the header has {width}",
                        text=text,
                    )
                    continue
                if blank and any(cells[i].strip() for i in blank):
                    yield Record(
                        row,
                        line,
                        None,
                        f"has a value in column {blank[0] + 1}, which has no header "
                        "name; name the column or remove the value",
                        text=text,
                    )
                    continue
                yield Record(row, line, dict(zip(header, cells, strict=True)), text=text)
        except csv.Error as exc:
            line = offset + prev + 1
            if "field larger than field limit" in str(exc):
                raise InputError(_CELL_TOO_LARGE, line=line) from None
            raise InputError(f"the file cannot be parsed as CSV: {exc}", line=line) from None

    def _jsonl_records(self) -> Iterator[Record]:
        row = 0
        for line, text in enumerate(self._lines(), start=1):
            if not text.strip():
                continue
            row += 1
            if row == 1 and text.lstrip().startswith("["):
                raise InputError(
                    "this is a JSON array, not JSON Lines: put one object per line "
                    "(for example: jq -c '.[]' input.json > input.jsonl)",
                    line=line,
                )
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                why = f"is not valid JSON: {exc.msg} at column {exc.colno}"
                yield Record(row, line, None, why, text=text)
                continue
            if not isinstance(value, dict):
                yield Record(
                    row,
                    line,
                    None,
                    f"is a JSON {type(value).__name__}, expected an object",
                    text=text,
                )
                continue
            if any(isinstance(v, str) and len(v) > MAX_CELL for v in value.values()):
                yield Record(
                    row,
                    line,
                    None,
                    f"holds a value larger than {MAX_CELL // 1024} KiB, "
                    "far beyond any HubSpot field",
                    text=text,
                )
                continue
            yield Record(row, line, value, text=text)

    # -- decoding errors --------------------------------------------------------------------
    def _decode_message(self, exc: UnicodeDecodeError) -> str:
        shown = "UTF-8" if self.encoding == "utf-8-sig" else self.encoding
        chosen = " (chosen from the start of the file)" if self.encoding_chosen else ""
        return (
            f"bytes that are not valid {shown}{chosen} ({exc.object[exc.start : exc.end]!r}); "
            "if the file came from Excel's plain 'CSV' export, pass --encoding cp1252"
        )

    @property
    def encoding_label(self) -> str:
        """The encoding as the plan shows it, e.g. ``utf-8 (auto)``."""
        name = "utf-8" if self.encoding == "utf-8-sig" else self.encoding
        return f"{name} (auto)" if self.encoding_chosen else name

    def _bad_line(self) -> int | None:
        """The first physical line the encoding cannot decode: rereads the file, so only a
        regular one (stdin or a FIFO would wait forever for a writer that has gone)."""
        if self.path == "-" or not os.path.isfile(self.path):
            return None
        decoder = codecs.getincrementaldecoder(self.encoding)()
        with _open(self.path) as raw:
            stream: IO[bytes] = raw
            if raw.read(2) == _GZIP_MAGIC:
                raw.seek(0)
                stream = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]
            else:
                raw.seek(0)
            for number, data in enumerate(stream, start=1):
                try:
                    decoder.decode(data)
                except UnicodeDecodeError:
                    return number
        return None


# What a truncated or corrupt gzip stream raises while it is read.
_DAMAGED: Final = (EOFError, gzip.BadGzipFile, zlib.error)


def _damaged_message(path: str, exc: BaseException) -> str:
    return f"{path} is a damaged or truncated gzip file ({exc}); compress it again or pass it plain"


def _open(path: str) -> IO[bytes]:
    try:
        return open(path, "rb")
    except OSError as exc:
        raise InputError(f"cannot open {path}: {exc.strerror}") from None


def _check_encoding(encoding: str) -> str:
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise InputError(f"unknown encoding {encoding!r}; try utf-8 or cp1252") from None
    # utf-8-sig reads files with and without Excel's byte-order mark alike.
    return "utf-8-sig" if name in ("utf-8", "utf-8-sig") else name


_SAMPLE: Final = 1 << 16  # bytes looked at by --encoding auto


def _guess_encoding(binary: IO[bytes]) -> str:
    """``--encoding auto``: UTF-8 (with or without BOM) when the file's start decodes as UTF-8,
    else cp1252, the encoding of Excel's plain "CSV" export on Windows. A later byte that is not
    UTF-8 stops the run naming its line, so a wrong guess is never sent."""
    peek = getattr(binary, "peek", None)
    head = peek(_SAMPLE)[:_SAMPLE] if peek else b""
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8-sig"


def _format_from_name(path: str) -> Format | None:
    name = path.lower().removesuffix(".gz")
    return next((fmt for suffix, fmt in _SUFFIXES.items() if name.endswith(suffix)), None)


def _sniff_format(binary: IO[bytes]) -> Format:
    """For stdin and odd names: JSON Lines when the first thing in it is ``{``."""
    peek = getattr(binary, "peek", None)
    head = peek(64) if peek else b""
    return "jsonl" if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith((b"{", b"[")) else "csv"


def _sniff_delimiter(header: str) -> str:
    """The candidate delimiter that occurs most often in the header row, comma on a tie."""
    counts = {d: header.count(d) for d in _DELIMITERS}
    best = max(counts, key=lambda d: (counts[d], d == ","))
    return best if counts[best] else ","


def _keeping(lines: Iterator[str], taken: list[str]) -> Iterator[str]:
    """``lines``, each also appended to ``taken`` as it is handed on."""
    for line in lines:
        taken.append(line)
        yield line
