"""Reading files: encodings, delimiters, quoting, line numbers, and unusable input."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from bulkleads.errors import InputError
from bulkleads.input.text import InputFile


def records(path: Path, **options: object) -> list:
    with InputFile(str(path), **options) as source:
        return list(source.records())


def test_excel_export_with_bom_crlf_and_quoted_newlines(tmp_path: Path) -> None:
    """A BOM never sticks to the first header; CRLF and embedded newlines keep line numbers."""
    path = tmp_path / "x.csv"
    path.write_bytes(b'\xef\xbb\xbfguid,note\r\na,"two\r\nlines"\r\nb,"say ""hi"""\r\n')
    rows = records(path)
    assert [r.values for r in rows] == [
        {"guid": "a", "note": "two\r\nlines"},
        {"guid": "b", "note": 'say "hi"'},
    ]
    assert [(r.row, r.line) for r in rows] == [(1, 2), (2, 4)]


@pytest.mark.parametrize("delimiter", [";", "\t", "|", ","])
def test_delimiter_is_sniffed_from_the_header(tmp_path: Path, delimiter: str) -> None:
    """, ; tab and | are recognised without flags."""
    path = tmp_path / "x.csv"
    path.write_text(
        f'guid{delimiter}city{delimiter}state\nA{delimiter}"B{delimiter}C"{delimiter}D\n'
    )
    assert records(path)[0].values == {"guid": "A", "city": f"B{delimiter}C", "state": "D"}


def test_ragged_rows_are_invalid_records_not_crashes(tmp_path: Path) -> None:
    """A row with the wrong number of cells is reported with counts, and reading goes on."""
    path = tmp_path / "x.csv"
    path.write_text("guid,city\na,b,c\n\nd,e\n")
    rows = records(path)
    assert rows[0].error == "has 3 cells but the header has 2"
    assert (rows[1].row, rows[1].line, rows[1].values) == (2, 4, {"guid": "d", "city": "e"})


def test_undecodable_bytes_name_the_line_and_suggest_encoding(tmp_path: Path) -> None:
    """cp1252 bytes read as UTF-8: the error names the line and suggests --encoding cp1252."""
    path = tmp_path / "x.csv"
    path.write_bytes(b"guid,city\na,Paris\nb,Z\xfcrich\n")
    with pytest.raises(InputError, match=r"line 3: .*--encoding cp1252"):
        records(path, encoding="utf-8")
    assert records(path, encoding="cp1252")[1].values == {"guid": "b", "city": "Zürich"}


@pytest.mark.parametrize(
    ("data", "label"),
    [
        ("guid,city\na,José\n".encode(), "utf-8 (auto)"),
        ("\ufeffguid,city\na,José\n".encode(), "utf-8 (auto)"),
        ("guid,city\na,José\n".encode("cp1252"), "cp1252 (auto)"),
    ],
)
def test_auto_encoding_reads_utf8_with_or_without_bom_else_cp1252(
    tmp_path: Path, data: bytes, label: str
) -> None:
    """The default --encoding auto reads Excel's UTF-8 and plain-CSV exports alike."""
    path = tmp_path / "x.csv"
    path.write_bytes(data)
    with InputFile(str(path)) as source:
        assert [r.values for r in source.records()] == [{"guid": "a", "city": "José"}]
        assert source.encoding_label == label


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1", "mac-roman"])
def test_utf8_text_read_with_another_encoding_is_refused(tmp_path: Path, encoding: str) -> None:
    """A UTF-8 file read with a single-byte --encoding would send mojibake: refused, naming
    the character and what it would have become."""
    path = tmp_path / "x.csv"
    path.write_bytes("guid,city\na,Paris\nb,José\n".encode())
    with pytest.raises(InputError, match=r"is UTF-8 text.*'é'.*--encoding utf-8"):
        records(path, encoding=encoding)
    ascii_only = tmp_path / "plain.csv"
    ascii_only.write_bytes(b"guid,city\na,Paris\n")  # ASCII reads the same in both
    assert records(ascii_only, encoding=encoding)[0].values == {"guid": "a", "city": "Paris"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"guid,city,Guid\n", "duplicate column names in the header: Guid, guid"),
        (b"PK\x03\x04rest", "export it as CSV"),
    ],
)
def test_unusable_files_get_a_clear_message(tmp_path: Path, content: bytes, message: str) -> None:
    """Empty files, duplicate headers and workbooks stop before any row is read."""
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        records(path)


def test_jsonl_rows_blank_lines_and_bad_lines(tmp_path: Path) -> None:
    """Blank lines are skipped; bad JSON and non-objects are invalid records with a reason."""
    path = tmp_path / "x.jsonl"
    path.write_text('{"guid": "a"}\n\n{oops\n[1]\n{"guid": "b", "city": null}\n')
    rows = records(path)
    assert [(r.row, r.line) for r in rows] == [(1, 1), (2, 3), (3, 4), (4, 5)]
    assert rows[1].error.startswith("is not valid JSON")
    assert rows[2].error == "is a JSON list, expected an object"
    assert rows[3].values == {"guid": "b", "city": None}


def test_json_array_is_refused_with_a_hint(tmp_path: Path) -> None:
    """A JSON array is not JSON Lines: the message says how to convert it."""
    path = tmp_path / "x.jsonl"
    path.write_text('[{"guid": "a"}]\n')
    with pytest.raises(InputError, match="jq -c"):
        records(path)


def test_gzip_is_read_transparently_and_hashed(tmp_path: Path) -> None:
    """x.csv.gz reads like x.csv; the content hash covers every byte of the file."""
    path = tmp_path / "x.csv.gz"
    path.write_bytes(gzip.compress(b"guid,city\na,b\n"))
    with InputFile(str(path)) as source:
        rows = list(source.records())
        assert source.bytes_read == path.stat().st_size
        first = source.content_hash
    assert rows[0].values == {"guid": "a", "city": "b"}
    path.write_bytes(gzip.compress(b"guid,city\na,c\n"))
    with InputFile(str(path)) as source:
        list(source.records())
        assert source.content_hash != first


def test_huge_cell_is_an_input_error(tmp_path: Path) -> None:
    """A cell far beyond any HubSpot field (an unclosed quote) names its line."""
    path = tmp_path / "x.csv"
    path.write_text("guid,city\na,b\nc," + "x" * (2 * 1024 * 1024) + "\n")
    with pytest.raises(InputError, match="line 3: a cell is larger than"):
        records(path)


@pytest.mark.parametrize(
    "content",
    [b"\x1f\x8b", gzip.compress(b"guid,city\na,b\n", mtime=0)[:-6]],
    ids=["magic-only", "cut-short"],
)
def test_truncated_gzip_is_an_input_error(tmp_path: Path, content: bytes) -> None:
    """A damaged .gz says so (found by the fuzz test), instead of an EOFError trace."""
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match="damaged or truncated gzip"):
        records(path)
