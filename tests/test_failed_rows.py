"""The rows a run did not do come back in the operator's own file, in the input's format, to
fix and run again: the real CLI against the real sandbox."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from openpyxl import Workbook, load_workbook

from tests.conftest import run_cli

CRM = ("--api", "crm-v3", "--object", "contacts", "--match", "email")


def _portal(tmp_path: Path, sandbox):
    seed = tmp_path / "seed.json"
    contacts = [{"id": str(i), "email": f"c{i}@x.io", "city": "Old"} for i in range(1, 7)]
    seed.write_text(json.dumps(contacts))
    return sandbox("--crm-seed", f"contacts={seed}", seed=None)


def test_failed_rows_come_back_byte_for_byte_in_a_semicolon_cp1252_csv(
    tmp_path: Path, sandbox
) -> None:
    """A ;-separated cp1252 file with CRLF endings: its invalid and not-found rows come back
    as their own bytes plus error and outcome; two cells fixed, the file sends exactly those
    two rows, and the row still not found comes back alone."""
    box = _portal(tmp_path, sandbox)
    lines = [
        "email;city;date_of_birth",
        "c1@x.io;Zürich;1990-01-01",
        'c2@x.io;"Genève; centre";next Tuesday',
        "c3@x.io;Köln;1991-03-03",
        "nobody@x.io;Paris;1992-04-04",
        "c5@x.io;Málaga;31/31/1990",
    ]
    source = tmp_path / "contacts.csv"
    source.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1252"))
    args = ("--base-url", box.url, *CRM)
    ran = run_cli("update", str(source), *args, cwd=tmp_path)
    assert ran.code == 1, ran.stderr
    failed = tmp_path / "contacts.failed.csv"
    assert f"failed rows: {failed}" in ran.stderr
    raw = failed.read_bytes().split(b"\r\n")
    assert raw[0] == "email;city;date_of_birth;error;outcome".encode("cp1252")
    for got, row in zip(raw[1:4], (2, 4, 5), strict=True):
        assert got.startswith(lines[row].encode("cp1252") + b";"), (got, lines[row])
    assert raw[4] == b""  # the file ends with the input's own line ending
    assert [r.rsplit(b";", 1)[1] for r in raw[1:4]] == [b"invalid", b"not_found", b"invalid"]
    applied = box.stats()["crm_applied_total"]
    fixed = failed.read_bytes().replace(b"next Tuesday", b"1993-05-05")
    failed.write_bytes(fixed.replace(b"31/31/1990", b"1990-12-31"))
    again = run_cli("update", str(failed), *args, cwd=tmp_path)
    assert again.code == 1, again.stderr  # nobody@x.io is still nobody
    assert box.stats()["crm_applied_total"] == applied + 2
    records = box.state_of("contacts")
    assert (records["2"]["city"], records["5"]["city"]) == ("Genève; centre", "Málaga")
    with (tmp_path / "contacts.failed.report.csv").open(encoding="utf-8-sig", newline="") as f:
        outcomes = [r["outcome"] for r in csv.DictReader(f, delimiter=";")]
    assert outcomes == ["updated", "not_found", "updated"]
    left = (tmp_path / "contacts.failed.failed.csv").read_bytes().split(b"\r\n")
    assert len(left) == 3 and left[1].startswith(b"nobody@x.io;Paris;1992-04-04;")


def test_failed_rows_of_a_workbook_come_back_as_a_workbook(tmp_path: Path, sandbox) -> None:
    """An .xlsx input gives a .failed.xlsx: the header, the failed rows' cells as read (a zip's
    leading zero kept), then error and outcome."""
    box = _portal(tmp_path, sandbox)
    book = Workbook()
    sheet = book.active
    sheet.title = "Export"
    sheet.append(["email", "zip", "date_of_birth"])
    sheet.append(["c1@x.io", "02139", "1990-01-01"])
    sheet.append(["c2@x.io", "02140", "soon"])
    source = tmp_path / "contacts.xlsx"
    book.save(source)
    ran = run_cli("update", str(source), "--base-url", box.url, *CRM, cwd=tmp_path)
    assert ran.code == 1, ran.stderr
    back = load_workbook(tmp_path / "contacts.failed.xlsx", read_only=True)
    rows = [list(r) for r in back["Export"].iter_rows(values_only=True)]
    assert rows[0] == ["email", "zip", "date_of_birth", "error", "outcome"]
    assert rows[1][:3] == ["c2@x.io", "02140", "soon"] and rows[1][4] == "invalid"
    assert "date_of_birth" in rows[1][3]
    assert len(rows) == 2


def test_failed_rows_of_json_lines_keep_each_line_and_add_two_keys(tmp_path: Path, sandbox) -> None:
    """A JSON line comes back as written, with error and outcome before its closing brace;
    the file sent again takes them for ours, not for fields; once every row is done, the
    stale file is removed."""
    box = _portal(tmp_path, sandbox)
    lines = [
        '{"email": "c1@x.io", "city": "A"}',
        '{"email": "c2@x.io",   "city": "B", "date_of_birth": "never"}',
    ]
    source = tmp_path / "contacts.jsonl"
    source.write_text("\n".join(lines) + "\n")
    ran = run_cli("update", str(source), "--base-url", box.url, *CRM, cwd=tmp_path)
    assert ran.code == 1, ran.stderr
    failed = tmp_path / "contacts.failed.jsonl"
    (line,) = failed.read_text().splitlines()
    assert line.startswith('{"email": "c2@x.io",   "city": "B", "date_of_birth": "never", ')
    assert json.loads(line)["outcome"] == "invalid"
    failed.write_text(failed.read_text().replace('"never"', '"1990-01-01"'))
    again = run_cli("update", str(failed), "--base-url", box.url, *CRM, cwd=tmp_path)
    assert again.code == 0, again.stderr
    assert not (tmp_path / "contacts.failed.failed.jsonl").exists()
    fixed = run_cli("update", str(source), "--base-url", box.url, *CRM, cwd=tmp_path)
    assert fixed.code == 1  # the same job: row 2 is invalid in it for good
    source.write_text(lines[0] + "\n")
    done = run_cli("update", str(source), "--base-url", box.url, *CRM, "--fresh", cwd=tmp_path)
    assert done.code == 0, done.stderr
    assert not failed.exists(), "every row done: the stale file of ours is gone"


def test_a_migration_with_creation_and_links_gets_back_its_rows_not_done(
    tmp_path: Path, sandbox
) -> None:
    """A migration keyed by email, creating what is missing and linking to companies by
    domain, from a ;-separated cp1252 file: the invalid rows and the row whose company was not
    found come back byte for byte; two cells fixed, running the file writes exactly those two
    records (the third is already so, its link still not found) and nothing else is sent."""
    contacts = [{"id": str(i), "email": f"c{i}@x.io", "city": "Old"} for i in range(1, 6)]
    companies = [{"id": "901", "domain": "d1.io"}, {"id": "902", "domain": "d2.io"}]
    (tmp_path / "contacts.json").write_text(json.dumps(contacts))
    (tmp_path / "companies.json").write_text(json.dumps(companies))
    box = sandbox(
        "--crm-seed", f"contacts={tmp_path / 'contacts.json'}",
        "--crm-seed", f"companies={tmp_path / 'companies.json'}",
        seed=None,
    )  # fmt: skip
    lines = [
        "email;city;date_of_birth;associate:companies",
        "c1@x.io;Zürich;1990-01-01;d1.io",
        "c2@x.io;Genève;next Tuesday;d2.io",
        "new@x.io;Köln;1991-03-03;d99.io",
        "c3@x.io;Málaga;31/31/1990;d1.io",
        "c4@x.io;Brno;1992-02-02;d2.io",
    ]
    source = tmp_path / "migration.csv"
    source.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1252"))
    args = ("--base-url", box.url, *CRM, "--create", "--associate-by", "companies=domain")
    ran = run_cli("update", str(source), *args, cwd=tmp_path)
    assert ran.code == 1, ran.stderr
    assert box.stats()["crm_created"] == 1
    failed = tmp_path / "migration.failed.csv"
    raw = failed.read_bytes().split(b"\r\n")
    kept = [lines[2], lines[3], lines[4]]
    for got, line in zip(raw[1:4], kept, strict=True):
        assert got.startswith(line.encode("cp1252") + b";"), (got, line)
    assert [r.rsplit(b";", 1)[1] for r in raw[1:4]] == [b"invalid", b"links not made", b"invalid"]
    assert b"companies d99.io: not found" in raw[2]
    applied = box.stats()["crm_applied_total"]
    fixed = failed.read_bytes().replace(b"next Tuesday", b"1993-05-05")
    failed.write_bytes(fixed.replace(b"31/31/1990", b"1990-12-31"))
    again = run_cli("update", str(failed), *args, cwd=tmp_path)
    assert again.code == 1, again.stderr  # d99.io is still no company's
    assert box.stats()["crm_applied_total"] == applied + 2
    assert box.stats()["crm_created"] == 1  # nothing made twice
    records = box.state_of("contacts")
    assert (records["2"]["date_of_birth"], records["3"]["city"]) == ("736560000000", "Málaga")
    assert records["1"]["city"] == "Zürich" and records["4"]["city"] == "Brno"  # sent once
