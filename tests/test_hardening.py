"""Hostile input, misbehaving servers, and the token: fail safe, say why, never leak."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulkleads.commands import app as cli
from bulkleads.errors import BulkleadsError
from bulkleads.input.text import InputFile
from bulkleads.jobstore.store import JobStore
from bulkleads.plan.options import PlanOptions
from bulkleads.plan.planner import plan
from bulkleads.report.rows import write_report
from tests.conftest import BULKLEADS, read_report, run_cli, write_seed
from tests.test_sender import SECRET as SENDER_SECRET
from tests.test_sender import make_store, send

SECRET = "pat-na1-99999999-8888-7777-6666-555555555555"
fixture_ok = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def plan_bytes(tmp_path: Path, data: bytes, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    db = tmp_path / "fuzz.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    with JobStore(db) as store, InputFile(str(path)) as source:
        plan(source, store, PlanOptions())
        rows = store.row_count()
        assert [r.row for r in store.report_rows()] == list(range(1, rows + 1))


@fixture_ok
@given(data=st.binary(max_size=400), name=st.sampled_from(["x.csv", "x.jsonl", "x.tsv"]))
def test_random_bytes_are_planned_or_refused_cleanly(
    tmp_path: Path, data: bytes, name: str
) -> None:
    """Any bytes: either every record is accounted for, or a BulkleadsError says why."""
    try:
        plan_bytes(tmp_path, data, name)
    except BulkleadsError as error:
        assert str(error)


@fixture_ok
@given(
    cells=st.lists(
        st.text(alphabet=st.characters(codec="utf-8"), max_size=12), min_size=1, max_size=8
    )
)
def test_any_text_row_after_a_guid_header(tmp_path: Path, cells: list[str]) -> None:
    """NULs, quotes, newlines and odd unicode in cells: planned or refused, never a crash."""
    body = "guid,city\n" + "\n".join(",".join(c.replace("\r", "") for c in cells)) + "\n"
    try:
        plan_bytes(tmp_path, body.encode(), "x.csv")
    except BulkleadsError as error:
        assert str(error)


def test_ten_thousand_columns(tmp_path: Path) -> None:
    """A very wide row is just many fields: planned, with the unknown ones listed."""
    header = "guid," + ",".join(f"c{i}" for i in range(10_000))
    row = "abc," + ",".join("v" for _ in range(10_000))
    path = tmp_path / "wide.csv"
    path.write_text(f"{header}\n{row}\n")
    with JobStore(tmp_path / "w.sqlite") as store, InputFile(str(path)) as source:
        summary = plan(source, store, PlanOptions(allow_custom_fields=True))
    assert summary.bundles == 1 and len(summary.custom_fields) == 10_000


def test_header_only_file_is_nothing_to_do(tmp_path: Path, sandbox) -> None:
    """A header and no rows: exit 0, "no data rows", no request."""
    box = sandbox()
    path = tmp_path / "empty.csv"
    path.write_text("guid,city\n")
    result = run_cli("update", str(path), "--base-url", box.url, cwd=tmp_path)
    assert result.code == 0 and "no data rows" in result.stderr
    assert box.stats()["requests"] == {}


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("book.xlsx", b"PK\x03\x04\x14\x00", "cannot read the workbook"),
        ("old.xls", b"\xd0\xcf\x11\xe0", "save it as Excel Workbook (.xlsx)"),
        ("array.jsonl", b'[{"guid": "a"}]', "JSON array"),
        ("late.csv", b"guid,city\n" + b"a,b\n" * 20_000 + b"c,Z\xfcrich\n", "--encoding cp1252"),
        ("dupes.csv", b"guid,city,City\na,b,c\n", "duplicate column names"),
        ("empty.csv", b"", "is empty"),
        ("nul.csv", b"\x00\x00\x00", "no guid column"),
    ],
)
def test_unusable_input_is_exit_2_and_nothing_is_sent(
    tmp_path: Path, sandbox, name: str, content: bytes, message: str
) -> None:
    """Unusable files: one clear line, exit 2, no traceback, no request."""
    box = sandbox()
    path = tmp_path / name
    path.write_bytes(content)
    result = run_cli("update", str(path), "--base-url", box.url, cwd=tmp_path)
    assert result.code == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert box.stats()["requests"] == {}


def test_guids_that_could_leave_the_lead_path_never_reach_the_server(
    tmp_path: Path, sandbox
) -> None:
    """Traversal, encoded dots, query, fragment, slash, space, look-alikes: invalid rows only."""
    box = sandbox()
    nasty = [
        "../admin",
        "%2e%2e",
        "a?access_token=x",
        "a#b",
        "a/b",
        "a b",
        "\u0430bc",
        "\uff41bc",
        "..",
        "a%2Fb",
    ]
    path = tmp_path / "nasty.jsonl"
    path.write_text("".join(json.dumps({"guid": g, "city": "x"}) + "\n" for g in nasty))
    result = run_cli("update", str(path), "--base-url", box.url, cwd=tmp_path)
    assert result.code == 1
    assert {r["outcome"] for r in read_report(tmp_path / "nasty.jsonl.report.csv")} == {"invalid"}
    stats = box.stats()
    assert stats["requests"] == {} and stats["off_path"] == []


def test_slow_answers_time_out_and_every_row_gets_an_outcome(tmp_path: Path, sandbox) -> None:
    """Answers slower than --timeout: retried, then failed with a timeout reason; run goes on."""
    seed = write_seed(tmp_path / "seed.json", ["a1", "a2", "a3"])
    box = sandbox("--latency-ms", "600", "--limit", "100", seed=seed)
    path = tmp_path / "slow.csv"
    path.write_text("guid,city\na1,x\na2,y\na3,z\n")
    result = run_cli(
        "update",
        str(path),
        "--base-url",
        box.url,
        "--timeout",
        "0.1",
        "--max-attempts",
        "2",
        "--rate",
        "100",
        cwd=tmp_path,
    )
    assert result.code == 1
    report = read_report(tmp_path / "slow.report.csv")
    assert [r["outcome"] for r in report] == ["failed"] * 3
    assert all("timeout" in r["error"] and r["attempts"] == "2" for r in report)


def test_429_without_a_body_or_with_garbage_is_still_retried(tmp_path: Path) -> None:
    """A 429 with no body, or an HTML one, is a rate limit all the same."""
    answers = iter(
        [
            httpx.Response(429),
            httpx.Response(429, text="<html>slow down</html>"),
            httpx.Response(204),
            httpx.Response(204),
            httpx.Response(204),
        ]
    )
    store = make_store(tmp_path)
    stats, _ = send(store, answers)
    assert stats.rate_limited == 2 and store.bundle_states() == {"done": 3}


def test_server_messages_in_the_report_are_inert(tmp_path: Path) -> None:
    """A server message shaped like a formula cannot run in a spreadsheet."""
    store = make_store(tmp_path, 1)
    send(store, iter([httpx.Response(400, json={"message": '=HYPERLINK("http://x")'})]))
    report = tmp_path / "r.csv"
    write_report(store, report)
    assert read_report(report)[0]["error"] == '\'=HYPERLINK("http://x")'


def test_token_appears_nowhere(tmp_path: Path, sandbox) -> None:
    """Verbose text and JSON logs, the report and the job store never hold the token."""
    seed = write_seed(tmp_path / "seed.json", ["t1", "t2"])
    box = sandbox("--token", SECRET, "--fail-rate", "0.5", "--limit", "100", seed=seed)
    path = tmp_path / "leads.csv"
    path.write_text("guid,city\nt1,x\nt2,y\nunknown,z\n")
    outputs = []
    for fmt in ("text", "json"):
        result = run_cli(
            "update",
            str(path),
            "--base-url",
            box.url,
            "--verbose",
            "--fresh",
            "--log-format",
            fmt,
            "--rate",
            "100",
            cwd=tmp_path,
            token=SECRET,
        )
        assert "GET /leads/v1/lead/t1" in result.stderr  # the debug log is really on
        outputs += [result.stdout, result.stderr]
    outputs.append((tmp_path / "leads.report.csv").read_text())
    state = [path for path in (tmp_path / "state").rglob("*") if path.is_file()]
    assert any(path.parent.name == "portals" for path in state)  # the portal's memory too
    outputs += [path.read_bytes().decode("latin-1") for path in state]
    assert all(SECRET not in text for text in outputs)


@pytest.mark.parametrize(
    "stage",
    [
        "bulkleads.pipeline.lifecycle.plan",
        "bulkleads.send.runner.Sender.run",
        "bulkleads.pipeline.lifecycle.write_report",
    ],
)
def test_internal_errors_at_any_stage_do_not_leak_the_token(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    stage: str,
) -> None:
    """A bug that puts the token into an exception still prints a redacted trace."""

    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"boom at https://api.hubapi.com/x?access_token={SECRET}")

    monkeypatch.setattr(stage, explode)
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", SECRET)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.csv").write_text("guid,city\nabc,x\n")
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "bulkleads",
            "update",
            "in.csv",
            "--base-url",
            "http://127.0.0.1:9",
            "--max-attempts",
            "1",
        ],
    )
    with pytest.raises(SystemExit) as stopped:
        cli.main()
    err = capsys.readouterr().err
    assert stopped.value.code == 2
    assert "internal error" in err and "boom" in err and SECRET not in err


def test_a_100_mb_field_is_refused_quickly(tmp_path: Path) -> None:
    """One 100 MB cell stops reading at the cell limit with its line, not after 100 MB."""
    path = tmp_path / "huge.csv"
    with path.open("w") as f:
        f.write("guid,city\na,")
        chunk = "x" * (1 << 20)
        for _ in range(100):
            f.write(chunk)
        f.write("\n")
    with pytest.raises(BulkleadsError, match="line 2: a cell is larger than"):
        plan_bytes_path(tmp_path, path)


def plan_bytes_path(tmp_path: Path, path: Path) -> None:
    with JobStore(tmp_path / "huge.sqlite") as store, InputFile(str(path)) as source:
        plan(source, store, PlanOptions())


def _fragments(secret: str, size: int = 8) -> set[str]:
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


@pytest.mark.parametrize(
    "echo",
    [
        lambda s: "x" * 280 + s,  # echoed past the 300-character cut
        lambda s: "bad token " + quote(s, safe=""),
        lambda s: "bad token " + s.replace("-", "%2D"),
        lambda s: "bad token " + json.dumps({"t": s}),
        lambda s: "pieces: " + s[:20] + " ... " + s[-12:],
    ],
)
def test_no_piece_of_the_token_survives_a_server_echo(tmp_path: Path, echo) -> None:
    """Whatever form a server echoes the token in (raw and cut, percent-encoded, inside JSON,
    in pieces), no run of 8 of its characters reaches the report."""
    store = make_store(tmp_path, 1)
    send(store, iter([httpx.Response(400, json={"message": echo(SENDER_SECRET)})]))
    report = tmp_path / "r.csv"
    write_report(store, report)
    text = report.read_text()
    assert "***" in text
    assert not any(piece in text for piece in _fragments(SENDER_SECRET))


def test_a_token_file_with_a_bom_and_a_newline_works_with_either_auth(
    tmp_path: Path, sandbox
) -> None:
    """An editor's BOM and trailing newline are not part of the token: query and bearer
    auth both send it clean and the run succeeds."""
    box = sandbox("--limit", "100", seed=write_seed(tmp_path / "s.json", [f"{1:032x}"]))
    token_file = tmp_path / "token.txt"
    token_file.write_text("\ufeffsandbox-token\r\n", encoding="utf-8")
    leads = tmp_path / "close.csv"
    leads.write_text(f"guid,city\n{1:032x},Bom\n")
    for auth in ("query", "bearer"):
        args = ("update", str(leads), "--base-url", box.url, "--auth", auth, "--fresh")
        ran = run_cli(*args, "--token-file", str(token_file), cwd=tmp_path, token=None)
        assert ran.code == 0, ran.stderr
    assert box.stats()["requests"].get("401") is None


@pytest.mark.parametrize("content", ['"pat-na1-abc"', "pat-na1-abc\u00e9", "Bearer: pat-na1-abc"])
def test_a_token_no_hubspot_token_looks_like_is_refused_naming_its_file(
    tmp_path: Path, content: str
) -> None:
    """Quotes, accents or a label around the token: exit 2 naming the file, nothing sent."""
    token_file = tmp_path / "token.txt"
    token_file.write_text(content, encoding="utf-8")
    leads = tmp_path / "close.csv"
    leads.write_text(f"guid,city\n{1:032x},X\n")
    args = ("update", str(leads), "--base-url", "http://127.0.0.1:9", "--token-file")
    ran = run_cli(*args, str(token_file), cwd=tmp_path, token=None)
    assert ran.code == 2 and str(token_file) in ran.stderr, ran.stderr
    assert "pat-na1-abc" not in ran.stderr


_PEAK = (
    "import resource, subprocess, sys\n"
    "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "print(done.stderr, file=sys.stderr)\n"
)
MEMORY_BOUND_KB = 200 * 1024  # a line is read at most 16 MiB at a time; the run takes ~80 MB


@pytest.mark.parametrize(
    ("name", "content", "said"),
    [
        ("zeros.csv", b"\0" * (40 << 20), "line 1: the first line is longer than 16 MiB"),
        ("oneline.csv", b"guid,city\n" + b"a,b," * (10 << 20), "line 2: a line is longer"),
        ("long.jsonl", b'{"guid": "' + b"x" * (40 << 20) + b'"}\n', "line 1: a line is longer"),
    ],
)
def test_a_line_past_the_cap_stops_the_run_with_memory_flat(
    tmp_path: Path, name: str, content: bytes, said: str
) -> None:
    """A file with no line breaks (/dev/zero, a binary) or a 40 MB line: exit 2 naming the
    line, having read at most the line cap, not the line."""
    path = tmp_path / name
    path.write_bytes(content)
    args = [BULKLEADS, "update", str(path), "--dry-run", "--format", name.rsplit(".", 1)[1]]
    done = subprocess.run(
        [sys.executable, "-c", _PEAK, *args], capture_output=True, text=True, cwd=tmp_path
    )
    code, peak_kb = (int(x) for x in done.stdout.split())
    assert code == 2 and said in done.stderr, done.stderr
    assert peak_kb < MEMORY_BOUND_KB


def test_a_jsonl_value_past_the_cell_cap_is_an_invalid_row(tmp_path: Path) -> None:
    """A 2 MB value in a JSON line is that row's problem: invalid, the other rows planned."""
    path = tmp_path / "cells.jsonl"
    path.write_text(
        json.dumps({"guid": "a1", "city": "x" * (2 << 20)}) + "\n" + '{"guid": "b2", "city": "y"}\n'
    )
    ran = run_cli("update", str(path), "--dry-run", cwd=tmp_path, token=None)
    assert ran.code == 1, ran.stderr
    report = read_report(tmp_path / "cells.jsonl.dry-run.report.csv")
    assert [r["outcome"] for r in report] == ["invalid", "planned"]
    assert "larger than 1024 KiB" in report[0]["error"]


@pytest.mark.parametrize(
    ("content", "code"),
    [(b"guid,city\ng1x,Berlin\n", 0), (b"guid,city\ng1x,B\xff\xfeerlin\n", 2)],
    ids=["good", "bad byte"],
)
def test_a_fifo_is_read_once_and_never_waited_on(tmp_path: Path, content: bytes, code: int) -> None:
    """A named pipe (or ``<(zcat x.gz)``) can be read once: nothing may open it again, not
    the report check and not the hunt for a bad byte's line, or the run waits forever."""
    pipe = tmp_path / "leads.csv"
    os.mkfifo(pipe)
    writer = threading.Thread(target=pipe.write_bytes, args=(content,), daemon=True)
    writer.start()
    args = ("update", str(pipe), "--encoding", "utf-8", "--dry-run", "--quiet")
    result = run_cli(*args, cwd=tmp_path, token=None, timeout=60)
    assert result.code == code, result.stderr
    assert "Traceback" not in result.stderr
