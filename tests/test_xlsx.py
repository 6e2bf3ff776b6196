"""`.xlsx` input: a workbook plans exactly like its CSV twin; headers that cannot be columns
stop the run."""

from __future__ import annotations

import zipfile
from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import Workbook

from bulkleads.input.xlsx import cell_text
from tests.conftest import read_report, run_cli

GUIDS = [f"{i:032x}" for i in range(1, 5)]
FORMULA = '<f>CONCATENATE("Bos","ton")</f><v />'


def save_with_cached_formula(book: Workbook, path: Path) -> None:
    """Save ``book``, then give its formula the cached value Excel would have stored (openpyxl
    writes formulas but cannot compute them)."""
    book.save(path)
    with zipfile.ZipFile(path) as source:
        parts = {name: source.read(name) for name in source.namelist()}
    sheet = parts["xl/worksheets/sheet1.xml"].decode()
    assert f'<c r="D2">{FORMULA}</c>' in sheet
    cached = FORMULA.replace("<v />", "<v>Boston</v>")
    sheet = sheet.replace(f'<c r="D2">{FORMULA}</c>', f'<c r="D2" t="str">{cached}</c>')
    parts["xl/worksheets/sheet1.xml"] = sheet.encode()
    with zipfile.ZipFile(path, "w") as target:
        for name, data in parts.items():
            target.writestr(name, data)


def test_a_workbook_plans_exactly_like_its_csv_twin(tmp_path: Path) -> None:
    """An Excel date, a zip code stored as text (leading zero), a whole number and a formula
    (its cached value) give the same report as the CSV export; lines are Excel's rows."""
    book = Workbook()
    sheet = book.active
    sheet.append(["guid", "closedAt", "zip", "city", "phone"])
    sheet.append([GUIDS[0], datetime(2024, 3, 1), "02134", '=CONCATENATE("Bos","ton")', 5550100])
    sheet.append([GUIDS[1], datetime(2024, 3, 1, 9, 30), None, "Austin", 12.0])
    sheet.append([None, None, None, None, None])  # a blank row is skipped
    sheet.append([GUIDS[2], "next Tuesday", "", "", ""])
    workbook = tmp_path / "close.xlsx"
    save_with_cached_formula(book, workbook)
    twin = tmp_path / "twin.csv"
    twin.write_text(
        "guid,closedAt,zip,city,phone\n"
        f"{GUIDS[0]},2024-03-01,02134,Boston,5550100\n"
        f"{GUIDS[1]},2024-03-01T09:30:00,,Austin,12\n"
        f"{GUIDS[2]},next Tuesday,,,\n"
    )
    for path in (workbook, twin):
        result = run_cli("update", str(path), "--dry-run", cwd=tmp_path, token=None)
        assert result.code == 1, result.stderr  # the third lead's date is invalid
    from_book = read_report(tmp_path / "close.xlsx.dry-run.report.csv")
    from_csv = read_report(tmp_path / "twin.dry-run.report.csv")
    assert [r["line"] for r in from_book] == ["2", "3", "5"]  # Excel's rows (4 is blank)
    assert [{**r, "line": ""} for r in from_book] == [{**r, "line": ""} for r in from_csv]
    assert '"zip":"02134"' in from_book[0]["changes"]
    assert '"city":"Boston"' in from_book[0]["changes"]
    raw = (tmp_path / "close.xlsx.dry-run.report.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # a workbook's report is for Excel: with a BOM


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (["guid", None, "city"], "column 2 of the header row is empty (or part of a merged cell)"),
        ([None, None], "is empty: it needs a header row"),
    ],
)
def test_a_header_that_cannot_name_columns_stops_the_run(
    tmp_path: Path, header: list, message: str
) -> None:
    """An empty or merged header cell, or an empty sheet: exit 2 naming it."""
    book = Workbook()
    book.active.append(header)
    book.active.append([GUIDS[0], "x", "y"])
    path = tmp_path / "bad.xlsx"
    book.save(path)
    result = run_cli("update", str(path), "--dry-run", cwd=tmp_path, token=None)
    assert result.code == 2 and message in result.stderr


def test_sheet_picks_the_sheet(tmp_path: Path) -> None:
    """--sheet NAME reads that sheet; an unknown name lists the sheets."""
    book = Workbook()
    book.active.title = "notes"
    book.active.append(["nothing here"])
    leads = book.create_sheet("leads")
    leads.append(["guid", "city"])
    leads.append([GUIDS[0], "Boston"])
    path = tmp_path / "book.xlsx"
    book.save(path)
    args = ("update", str(path), "--dry-run")
    picked = run_cli(*args, "--sheet", "leads", cwd=tmp_path, token=None)
    assert picked.code == 0, picked.stderr
    assert read_report(tmp_path / "book.xlsx.dry-run.report.csv")[0]["outcome"] == "planned"
    missing = run_cli(*args, "--sheet", "Leads", cwd=tmp_path, token=None)
    assert missing.code == 2 and "its sheets: 'notes', 'leads'" in missing.stderr


def test_a_formula_excel_never_computed_is_an_invalid_row_not_an_empty_cell(
    tmp_path: Path,
) -> None:
    """openpyxl gives None for a formula with no cached value, as for an empty cell; the
    row is invalid and says why, and its neighbours are planned."""
    book = Workbook()
    sheet = book.active
    sheet.append(["guid", "city", "state"])
    sheet.append([GUIDS[0], '=CONCATENATE("Bos","ton")', "MA"])
    sheet.append([GUIDS[1], "Austin", "TX"])
    path = tmp_path / "leads.xlsx"
    book.save(path)  # openpyxl writes the formula without a value
    result = run_cli("update", str(path), "--dry-run", cwd=tmp_path, token=None)
    assert result.code == 1, result.stderr
    rows = read_report(tmp_path / "leads.xlsx.dry-run.report.csv")
    assert [r["outcome"] for r in rows] == ["invalid", "planned"]
    assert "'city' holds a formula with no computed value" in rows[0]["error"]


def test_shared_strings_past_the_cap_are_refused_before_they_are_read(tmp_path: Path) -> None:
    """A small file can declare gigabytes of shared strings, which openpyxl holds whole."""
    book = Workbook()
    book.active.append(["guid", "city"])
    book.active.append([GUIDS[0], "Boston"])
    path = tmp_path / "bomb.xlsx"
    book.save(path)
    with zipfile.ZipFile(path) as source:
        parts = {name: source.read(name) for name in source.namelist()}
    text = b"a" * (129 << 20)  # past the 128 MiB cap; about 130 KB compressed
    parts["xl/sharedStrings.xml"] = b"<sst><si><t>" + text + b"</t></si></sst>"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in parts.items():
            target.writestr(name, data)
    assert path.stat().st_size < 1 << 20
    result = run_cli("update", str(path), "--dry-run", cwd=tmp_path, token=None)
    assert result.code == 2, result.stderr
    assert "at most 128 MiB" in result.stderr


@pytest.mark.parametrize(
    ("value", "number_format", "shown"),
    [
        (2139, "00000", "02139"),
        (2139.0, "00000", "02139"),
        (21391234, "00000-0000", "02139-1234"),
        (12345678, "000-00-0000", "012-34-5678"),
        (2139, "0", "2139"),
        (2139, "General", "2139"),
        (2139, "#,##0", "2139"),  # a thousands separator is shown as General: no padding
        (2139, "0.00", "2139"),  # decimals likewise
        (123456, "00000", "123456"),  # wider than the format: every digit
        (-5, "00000", "-5"),
    ],
)
def test_a_whole_number_under_a_zero_format_reads_as_the_sheet_shows_it(
    value: float, number_format: str, shown: str
) -> None:
    """What the sheet shows is what the user means: a zip stored as 2139 under 00000."""
    assert cell_text(value, number_format) == shown


def test_sheet_numbers_go_as_excel_shows_them_or_not_at_all(tmp_path: Path, sandbox) -> None:
    """End to end: a zip stored as the number 2139 under the format 00000 is sent as 02139; a
    number cell of 19 digits (Excel keeps 15) is an invalid row saying to format the column
    as text, never sent with digits Excel never held; text cells keep their digits."""
    seed = tmp_path / "seed.json"
    seed.write_text('[{"id": "1", "zip": ""}, {"id": "2", "zip": ""}, {"id": "3", "zip": ""}]')
    box = sandbox("--crm-seed", f"contacts={seed}", seed=None)
    book = Workbook()
    sheet = book.active
    sheet.append(["id", "zip", "phone"])
    sheet.append(["1", 2139, "02139"])
    sheet.append(["2", "02139", 1234567890123456789])
    sheet.append(["3", "01001", "1234567890123456789"])
    sheet["B2"].number_format = "00000"
    path = tmp_path / "contacts.xlsx"
    book.save(path)
    result = run_cli("update", str(path), "--api", "crm-v3", "--base-url", box.url, cwd=tmp_path)
    assert result.code == 1, result.stderr
    rows = read_report(tmp_path / "contacts.xlsx.report.csv")
    assert [r["outcome"] for r in rows] == ["updated", "invalid", "updated"]
    assert "'phone' holds a 19-digit number" in rows[1]["error"]
    assert "Excel shows 1.23456789012346e+18" in rows[1]["error"]
    assert "Format the column as text" in rows[1]["error"]
    records = box.state_of("contacts")
    assert records["1"]["zip"] == "02139" and records["1"]["phone"] == "02139"
    assert records["2"]["zip"] == "" and "phone" not in records["2"]
    assert records["3"]["phone"] == "1234567890123456789"
