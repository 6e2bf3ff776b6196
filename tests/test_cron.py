"""Cron: JSON on stderr for every outcome, a summary file, retries that can succeed, a plan that
speaks of what is left, and help a person can use."""

from __future__ import annotations

import csv
import json
import os
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from bulkleads.commands.app import app
from bulkleads.sandbox import SANDBOX_TOKEN
from tests.conftest import json_lines, read_report, run_cli, wait_until, write_seed

GUIDS = [f"{i:032x}" for i in range(1, 41)]
OUTCOMES = ("updated", "failed", "invalid", "skipped", "not_sent", "deferred", "planned")


@pytest.mark.parametrize(
    ("args", "token", "kind"),
    [
        (("update", "x.csv", "--rte", "5"), "pat-test-token", "usage"),
        (("update", "missing.csv"), "pat-test-token", "InputError"),
        (("update", "x.csv"), None, "UsageError"),
        (("update", "x.csv", "--api", "crm-v9"), "pat-test-token", "usage"),
        (("report", "deadbeef"), "pat-test-token", "JobError"),
    ],
)
def test_every_stderr_line_of_a_failing_run_is_json(
    tmp_path: Path, args: tuple[str, ...], token: str | None, kind: str
) -> None:
    """Mistyped flags, missing files, a missing token, an unknown job: one JSON error object
    with its type, message and exit code, by flag or by environment variable."""
    (tmp_path / "x.csv").write_text(f"guid,city\n{GUIDS[0]},A\n")
    for how in ({"flag": True}, {"env": True}):
        extra = ("--log-format", "json") if "flag" in how else ()
        env = {"BULKLEADS_LOG_FORMAT": "json"} if "env" in how else {}
        result = run_cli(*args, *extra, cwd=tmp_path, token=token, env=env)
        assert result.code == 2, result.stderr
        events = json_lines(result.stderr)
        (error,) = [e for e in events if e.get("event") == "error"]
        assert error["type"] == kind and error["exit_code"] == 2 and error["message"]


def test_a_succeeding_run_is_json_with_a_complete_summary(tmp_path: Path, sandbox) -> None:
    """Every line JSON; the summary has every count (zeros too), requests, the job, the report
    and the exit code; --summary writes the same object to a file."""
    box = sandbox("--limit", "100", seed=write_seed(tmp_path / "s.json", GUIDS[:3]))
    leads = tmp_path / "close.csv"
    leads.write_text(f"guid,city\n{GUIDS[0]},A\n{GUIDS[1]},B\nbad guid!,C\n")
    monitor = tmp_path / "monitor" / "close.json"
    result = run_cli(
        "update", str(leads), "--base-url", box.url, "--rate", "100",
        "--log-format", "json", "--summary", str(monitor), cwd=tmp_path,
    )  # fmt: skip
    assert result.code == 1, result.stderr
    events = json_lines(result.stderr)
    invalid = next(e for e in events if e["event"] == "invalid_row")
    assert (invalid["row"], invalid["line"], invalid["guid"]) == (3, 4, "bad guid!")
    assert invalid["field"] is None  # the guid itself is wrong, not a field
    assert "not valid" in invalid["reason"]
    summary = next(e for e in events if e["event"] == "summary")
    assert {k: summary[k] for k in OUTCOMES} == {
        "updated": 2, "failed": 0, "invalid": 1, "skipped": 0,
        "not_sent": 0, "deferred": 0, "planned": 0,
    }  # fmt: skip
    assert summary["exit_code"] == 1 and summary["requests"] == 4  # 2 reads, 2 writes
    assert summary["statuses"] == {"200": 2, "204": 2} and summary["rate_limited"] == 0
    assert summary["report"] == str(tmp_path / "close.report.csv")
    assert len(summary["job"]) == 16
    written = json.loads(monitor.read_text())
    assert {k: v for k, v in written.items() if k not in ("time", "level", "message")} == {
        k: v for k, v in summary.items() if k not in ("time", "level", "message")
    }


def test_retry_sends_what_can_succeed_and_leaves_a_404_alone(tmp_path: Path, sandbox) -> None:
    """An outage fails three leads (5xx), one lead does not exist (404): retry sends the three
    and not the 404, and says so; --all-failed sends the 404 too."""
    box = sandbox("--limit", "100", seed=write_seed(tmp_path / "s.json", GUIDS[:3]))
    leads = tmp_path / "close.csv"
    leads.write_text("guid,city\n" + "".join(f"{g},C{i}\n" for i, g in enumerate(GUIDS[:4])))
    flags = ("--base-url", box.url, "--rate", "100", "--no-backup", "--max-attempts", "1")
    box.configure(fail_rate=1.0)
    assert run_cli("update", str(leads), *flags, cwd=tmp_path).code == 1
    box.configure(fail_rate=0.0)
    report = tmp_path / "close.report.csv"
    # GUIDS[3] is unknown to the sandbox: make its failure the 404 it is.
    assert run_cli("retry", str(report), cwd=tmp_path).code == 1
    assert Counter(r["outcome"] for r in read_report(report)) == {"updated": 3, "failed": 1}
    before = box.stats()["requests"]
    again = run_cli("retry", str(report), cwd=tmp_path)
    assert again.code == 1
    assert "0 leads failed on a transient answer" in again.stderr
    assert "1 lead failed for good is left alone (--all-failed sends them)" in again.stderr
    assert box.stats()["requests"] == before  # the 404 was not sent again
    forced = run_cli("retry", str(report), "--all-failed", cwd=tmp_path)
    assert forced.code == 1 and box.stats()["requests"]["404"] == before["404"] + 1


def test_the_plan_of_a_resumed_job_speaks_of_what_is_left(tmp_path: Path, sandbox) -> None:
    """After the daily cap stopped a job, the rerun's plan counts the requests left, not the
    whole job's; a single row reads as one row."""
    box = sandbox("--limit", "100", "--daily", "6", seed=write_seed(tmp_path / "s.json", GUIDS))
    leads = tmp_path / "close.csv"
    leads.write_text("guid,city\n" + "".join(f"{g},C{i}\n" for i, g in enumerate(GUIDS[:10])))
    args = ("update", str(leads), "--base-url", box.url, "--rate", "100", "--no-backup")
    assert run_cli(*args, cwd=tmp_path).code == 3
    box.configure(daily=1000)
    again = run_cli(*args, "--log-format", "json", cwd=tmp_path)
    plan = next(e for e in json_lines(again.stderr) if e["event"] == "plan")
    assert plan["requests"] == 4 and "4 requests left" in plan["message"]
    one = tmp_path / "one.csv"
    one.write_text(f"guid,city\n{GUIDS[20]},X\n")
    single = run_cli("update", str(one), "--dry-run", cwd=tmp_path, token=None)
    assert "plan: 1 row read" in single.stderr and "1 lead to update" in single.stderr


def test_a_job_the_daily_limit_stopped_says_when_the_limit_starts_again(
    tmp_path: Path, sandbox
) -> None:
    """Deferred by the daily cap: exit 3, and the log says when the limit resets, read from
    HubSpot's usage endpoint (the sandbox's resetsAt), and to run the same command then."""
    box = sandbox("--limit", "100", "--daily", "3", seed=write_seed(tmp_path / "s.json", GUIDS))
    leads = tmp_path / "close.csv"
    leads.write_text("guid,city\n" + "".join(f"{g},C{i}\n" for i, g in enumerate(GUIDS[:10])))
    args = ("update", str(leads), "--base-url", box.url, "--no-backup", "--log-format", "json")
    stopped = run_cli(*args, cwd=tmp_path)
    assert stopped.code == 3, stopped.stderr
    usage = httpx.get(
        f"{box.url}/account-info/2026-03/api-usage/daily/private-apps",
        headers={"Authorization": f"Bearer {SANDBOX_TOKEN}"},
    ).json()["results"][0]
    said = next(e for e in json_lines(stopped.stderr) if e["event"] == "daily_reset")
    resets = datetime.fromisoformat(usage["resetsAt"])
    assert datetime.fromisoformat(said["resets_at"]) == resets
    assert f"{resets:%Y-%m-%d %H:%M} UTC" in said["message"]
    assert "run the same command then" in said["message"]
    assert usage["currentUsage"] == usage["usageLimit"] == 3


def test_help_shows_choices_not_python_types() -> None:
    """Enumerated options list their choices; no <str>-style placeholders on options; the
    sandbox's help documents its config endpoint."""
    runner = CliRunner()
    text = runner.invoke(app, ["update", "--help"], env={"COLUMNS": "200"}).output
    for choices in (
        "<csv|tsv|jsonl|xlsx>",
        "<leads-v1|crm-v3>",
        "<last|first|error>",
        "<text|json>",
    ):
        assert choices in text, choices
    options = [line for line in text.splitlines() if "--" in line and "--help" not in line]
    assert not [line for line in options if "<str>" in line or "<list[str]>" in line]
    sandbox = runner.invoke(app, ["sandbox", "--help"], env={"COLUMNS": "200"}).output
    assert "/__sandbox/config" in sandbox and "latency_ms" in sandbox


def test_jobs_piped_is_complete_and_prune_keeps_what_is_unfinished(tmp_path: Path, sandbox) -> None:
    """A pipe gets every column uncut (a long input path included), --json the same rows,
    --all the archived job; prune removes old finished and archived jobs only, and `report
    INPUT` finds the input's job."""
    box = sandbox("--limit", "100", "--daily", "12", seed=write_seed(tmp_path / "s.json", GUIDS))
    folder = tmp_path / ("a-long-folder-name-that-a-terminal-would-cut" * 2)
    folder.mkdir()
    done, later = folder / "done.csv", folder / "later.csv"
    done.write_text("guid,city\n" + "".join(f"{g},D{i}\n" for i, g in enumerate(GUIDS[:3])))
    later.write_text("guid,city\n" + "".join(f"{g},L{i}\n" for i, g in enumerate(GUIDS[3:20])))
    flags = ("--base-url", box.url, "--rate", "100", "--no-backup")
    assert run_cli("update", str(done), *flags, cwd=tmp_path).code == 0
    assert run_cli("update", str(done), *flags, "--fresh", cwd=tmp_path).code == 0  # archives
    assert run_cli("update", str(later), *flags, cwd=tmp_path).code == 3  # daily cap: deferred
    listing = run_cli("jobs", cwd=tmp_path)
    header, *lines = [line.split("\t") for line in listing.stdout.splitlines()]
    rows = [dict(zip(header, line, strict=True)) for line in lines]
    assert [(r["status"], r["input"]) for r in rows] == [
        ("done", str(done)),
        ("deferred", str(later)),
    ]
    assert rows[1]["rows"] == "17" and rows[1]["updated"] == "6" and rows[1]["deferred"] == "11"
    assert rows[0]["target"].startswith("leads-v1 127.0.0.1")
    every = json.loads(run_cli("jobs", "--all", "--json", cwd=tmp_path).stdout)
    assert sorted(r["status"] for r in every) == ["archived", "deferred", "done"]
    assert run_cli("report", str(done), "-q", cwd=tmp_path).code == 0  # found by its input
    state = Path(os.environ["BULKLEADS_STATE_DIR"])
    month_ago = time.time() - 31 * 86400
    for path in state.glob("*.job.sqlite*"):
        os.utime(path, (month_ago, month_ago))
    pruned = run_cli("jobs", "prune", "--older-than", "30d", cwd=tmp_path)
    assert pruned.code == 0 and "pruned 2 jobs, freed" in pruned.stdout
    left = json.loads(run_cli("jobs", "--all", "--json", cwd=tmp_path).stdout)
    assert [r["status"] for r in left] == ["deferred"]
    empty = run_cli("jobs", cwd=tmp_path, env={"BULKLEADS_STATE_DIR": str(tmp_path / "none")})
    assert empty.stdout == "" and "no jobs in" in empty.stderr


def test_a_semicolon_cp1252_input_gets_a_semicolon_report_excel_reads(
    tmp_path: Path, sandbox
) -> None:
    """Excel's plain CSV in a ';' locale: the report follows it (';', a BOM, UTF-8), and
    round-trips through the csv module with its accents; --report-dialect chooses another."""
    box = sandbox("--limit", "100", seed=write_seed(tmp_path / "s.json", GUIDS[:2]))
    leads = tmp_path / "noms.csv"
    leads.write_bytes(f"guid;city\n{GUIDS[0]};Zürich\n{GUIDS[1]};Genève\n".encode("cp1252"))
    args = ("update", str(leads), "--base-url", box.url, "--rate", "100")
    assert run_cli(*args, cwd=tmp_path).code == 0
    raw = (tmp_path / "noms.report.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfrow;line;guid;outcome;")
    with (tmp_path / "noms.report.csv").open(newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f, delimiter=";"))
    assert [json.loads(r["changes"])["city"][1] for r in rows] == ["Zürich", "Genève"]
    tsv = tmp_path / "noms.tsv.report"
    again = run_cli(*args, "--report", str(tsv), "--report-dialect", "tsv", "--fresh", cwd=tmp_path)
    assert again.code == 0, again.stderr
    assert tsv.read_bytes().startswith(b"row\tline\tguid\toutcome\t")


def test_local_dates_read_with_date_format_and_ambiguity_names_the_format(tmp_path: Path) -> None:
    """13/03/2024 is refused naming the format to use; with --date-format it is read; two
    formats that disagree make the row invalid, naming both readings."""
    leads = tmp_path / "close.csv"
    leads.write_text(f"guid,closedAt\n{GUIDS[0]},13/03/2024\n{GUIDS[1]},03/04/2024\n")
    args = ("update", str(leads), "--dry-run")
    plain = run_cli(*args, cwd=tmp_path, token=None)
    rows = read_report(tmp_path / "close.dry-run.report.csv")
    assert plain.code == 1 and "or pass --date-format %d/%m/%Y" in rows[0]["error"]
    assert "ambiguous: pass --date-format %d/%m/%Y (day first) or %m/%d/%Y" in rows[1]["error"]
    local = run_cli(*args, "--date-format", "%d/%m/%Y", cwd=tmp_path, token=None)
    assert local.code == 0, local.stderr
    rows = read_report(tmp_path / "close.dry-run.report.csv")
    assert [json.loads(r["changes"])["closedAt"] for r in rows] == [1710288000000, 1712102400000]
    both = run_cli(
        *args, "--date-format", "%d/%m/%Y", "--date-format", "%m/%d/%Y", cwd=tmp_path, token=None
    )
    rows = read_report(tmp_path / "close.dry-run.report.csv")
    assert both.code == 1 and rows[0]["outcome"] == "planned"  # 13 is no month: one reading
    assert "'03/04/2024' is ambiguous (%d/%m/%Y reads 2024-04-03" in rows[1]["error"]


def test_a_profile_sets_a_portal_and_a_flag_wins_over_it(tmp_path: Path, sandbox) -> None:
    """--profile reads base URL, pace, column map and the token's variable from config.toml;
    a flag given beside it wins; a profile holding a token is refused."""
    box = sandbox("--limit", "100", seed=write_seed(tmp_path / "s.json", GUIDS[:2]))
    config = tmp_path / "config.toml"
    config.write_text(
        "[profile.nightly]\n"
        f'base_url = "{box.url}"\n'
        "rate = 40\n"
        'token_env = "NIGHTLY_TOKEN"\n'
        'map = { "Lead ID" = "guid" }\n'
        "[profile.leaky]\n"
        'token = "pat-na1-oops"\n'
    )
    leads = tmp_path / "close.csv"
    leads.write_text(f"Lead ID,city\n{GUIDS[0]},A\n{GUIDS[1]},B\n")
    env = {"BULKLEADS_CONFIG": str(config), "NIGHTLY_TOKEN": "sandbox-token"}
    args = ("update", str(leads), "--profile", "nightly", "--log-format", "json")
    ran = run_cli(*args, cwd=tmp_path, token=None, env=env)
    assert ran.code == 0, ran.stderr
    plan = next(e for e in json_lines(ran.stderr) if e["event"] == "plan")
    assert "at 40 per 1 s" in plan["message"]
    assert box.stats()["applied_total"] == 2  # the profile's base URL, token and map
    flagged = run_cli(*args, "--rate", "7", "--dry-run", cwd=tmp_path, token=None, env=env)
    plan = next(e for e in json_lines(flagged.stderr) if e["event"] == "plan")
    assert "at 7 per 1 s" in plan["message"]
    leaky = run_cli("update", str(leads), "--profile", "leaky", cwd=tmp_path, env=env)
    assert leaky.code == 2 and "never the token itself" in leaky.stderr
    assert "pat-na1-oops" not in leaky.stderr
    missing = run_cli("update", str(leads), "--profile", "weekly", cwd=tmp_path, env=env)
    assert missing.code == 2 and "profiles there: leaky, nightly" in missing.stderr


def test_retry_and_undo_take_the_jobs_profile_with_no_flag(tmp_path: Path, sandbox) -> None:
    """A job run with --profile (its token in the profile's own variable) is retried and
    undone (dry run and real) with no flag at all: the job keeps its profile; a dry run
    without any token stays offline."""
    box = sandbox("--limit", "100", seed=write_seed(tmp_path / "s.json", GUIDS[:3]))
    config = tmp_path / "config.toml"
    config.write_text(
        f'[profile.nightly]\nbase_url = "{box.url}"\nrate = 50\ntoken_env = "NIGHTLY_TOKEN"\n'
    )
    leads = tmp_path / "close.csv"
    leads.write_text("guid,city\n" + "".join(f"{g},Town{i}\n" for i, g in enumerate(GUIDS[:3])))
    env = {"BULKLEADS_CONFIG": str(config), "NIGHTLY_TOKEN": "sandbox-token"}
    profile = ("--profile", "nightly")
    ran = run_cli("update", str(leads), *profile, cwd=tmp_path, token=None, env=env)
    assert ran.code == 0, ran.stderr
    retried = run_cli("retry", str(leads), cwd=tmp_path, token=None, env=env)
    assert retried.code == 0, retried.stderr
    preview = run_cli("undo", str(leads), "--dry-run", cwd=tmp_path, token=None, env=env)
    assert preview.code == 0, preview.stderr
    assert "city: 3 leads would change" in preview.stderr  # read with the profile's token
    offline = run_cli(
        "undo", str(leads), "--dry-run", cwd=tmp_path, token=None, env={**env, "NIGHTLY_TOKEN": ""}
    )
    assert offline.code == 0, offline.stderr
    assert "no token: the dry run stays offline" in offline.stderr
    undone = run_cli("undo", str(leads), cwd=tmp_path, token=None, env=env)
    assert undone.code == 0, undone.stderr
    assert all(lead["city"] == "" for lead in box.state().values())
    assert run_cli("retry", str(leads), *profile, cwd=tmp_path, token=None, env=env).code == 0


def test_a_job_run_with_a_token_file_retries_with_no_flag(tmp_path: Path, sandbox) -> None:
    """--token-file is kept with the job (its path, never the token): `retry REPORT` alone
    reads the same file; the job file holds no piece of the token."""
    box = sandbox("--limit", "100", seed=write_seed(tmp_path / "s.json", GUIDS[:3]))
    box.configure(fail_rate=1.0)
    token = tmp_path / "token.txt"
    token.write_text("sandbox-token\n")
    leads = tmp_path / "close.csv"
    leads.write_text("guid,city\n" + "".join(f"{g},T{i}\n" for i, g in enumerate(GUIDS[:3])))
    args = ("--base-url", box.url, "--token-file", str(token), "--max-attempts", "1")
    failed = run_cli("update", str(leads), *args, "--no-backup", cwd=tmp_path, token=None)
    assert failed.code == 1, failed.stderr
    box.configure(fail_rate=0.0)
    again = run_cli("retry", str(tmp_path / "close.report.csv"), cwd=tmp_path, token=None)
    assert again.code == 0, again.stderr
    assert [box.state()[g]["city"] for g in GUIDS[:3]] == ["T0", "T1", "T2"]
    for job in Path(os.environ["BULKLEADS_STATE_DIR"]).glob("*.job.sqlite"):
        assert b"sandbox-token" not in job.read_bytes()


def test_the_summary_is_written_on_exit_2_and_never_over_a_file_not_ours(
    tmp_path: Path, sandbox
) -> None:
    """A run that stops with exit 2 still replaces last night's summary with its error; a
    --summary naming the input or the report is exit 2 and leaves it whole."""
    box = sandbox("--limit", "100", seed=write_seed(tmp_path / "s.json", GUIDS[:2]))
    leads = tmp_path / "close.csv"
    leads.write_text(f"guid,city\n{GUIDS[0]},A\n{GUIDS[1]},B\n")
    summary = tmp_path / "summary.json"
    base = ("update", str(leads), "--base-url", box.url, "--summary", str(summary))
    assert run_cli(*base, cwd=tmp_path).code == 0
    assert json.loads(summary.read_text())["updated"] == 2
    stopped = run_cli(*base, "--delimiter", "ab", cwd=tmp_path)  # a usage error: exit 2
    assert stopped.code == 2
    written = json.loads(summary.read_text())
    assert written["exit_code"] == 2 and "--delimiter" in written["error"]
    assert written["updated"] == 0
    for victim in (leads, tmp_path / "close.report.csv"):
        before = victim.read_bytes()
        args = ("update", str(leads), "--base-url", box.url, "--summary", str(victim))
        refused = run_cli(*args, cwd=tmp_path)
        assert refused.code == 2 and "not a bulkleads summary" in refused.stderr
        assert victim.read_bytes() == before


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"[profile.p]\nrate = nan\n", "rate is nan"),
        (b"[profile.p]\nrate_window = -5\n", "rate_window is -5"),
        (b"[profile.p]\nrate = 0\n", "rate is 0"),
        (b"[profile.p]\nconcurrency = 100000\n", "concurrency is 100000"),
        (b'[profile.p]\nbase_url = "caf\xe9"\n', "not UTF-8"),
        (b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n", "too deeply"),
    ],
)
def test_a_profile_passes_the_checks_the_flags_do(
    tmp_path: Path, content: bytes, said: str
) -> None:
    """A profile's values meet the flags' bounds, and an unreadable config.toml is exit 2
    saying what is wrong, never a traceback."""
    config = tmp_path / "config.toml"
    config.write_bytes(content)
    leads = tmp_path / "close.csv"
    leads.write_text(f"guid,city\n{GUIDS[0]},A\n")
    env = {"BULKLEADS_CONFIG": str(config)}
    ran = run_cli("update", str(leads), "--dry-run", "--profile", "p", cwd=tmp_path, env=env)
    assert ran.code == 2, ran.stderr
    assert said in ran.stderr and "Traceback" not in ran.stderr


def test_the_jobs_table_fits_a_terminal_and_names_its_columns_once(
    tmp_path: Path, sandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """At 160 columns the table shows whole cells: the job's time to the minute under
    `planned`, the records it created under `created`, file names for paths, and only the
    outcome columns that hold something."""
    from bulkleads.commands.jobs import _job_row, _print_table
    from bulkleads.jobstore.folder import JobFolder

    box = sandbox("--limit", "100", seed=write_seed(tmp_path / "s.json", GUIDS))
    leads = tmp_path / "close.csv"
    leads.write_text("guid,city\n" + "".join(f"{g},C{i}\n" for i, g in enumerate(GUIDS[:3])))
    assert run_cli("update", str(leads), "--base-url", box.url, cwd=tmp_path).code == 0
    rows = [_job_row(info) for info in JobFolder().list()]
    monkeypatch.setenv("COLUMNS", "160")
    _print_table(rows)
    table = capsys.readouterr().out
    header = next(line for line in table.splitlines() if "status" in line)
    names = [c.strip() for c in header.split("┃") if c.strip()]
    assert names == ["job", "status", "planned", "input", "target", "rows", "updated", "report"]
    assert "…" not in table, table
    assert str(rows[0]["created"])[:16].replace("T", " ") in table
    assert "close.csv" in table and "close.report.csv" in table


def test_two_nightly_runs_tell_tonight_from_the_job_and_keep_both_reports(
    tmp_path: Path, sandbox
) -> None:
    """The same nightly command twice: the second run's summary says it had nothing to do and
    made no request (this_run), while the job's totals stay; a dated --report keeps both
    nights' reports, and the later one leads back to the job."""
    box = sandbox("--limit", "100", seed=write_seed(tmp_path / "s.json", GUIDS[:5]))
    leads = tmp_path / "close.csv"
    leads.write_text("guid,city\n" + "".join(f"{g},N{i}\n" for i, g in enumerate(GUIDS[:5])))
    summary = tmp_path / "summary.json"
    args = ("update", str(leads), "--base-url", box.url, "--summary", str(summary))
    args += ("--report", str(tmp_path / "close-{datetime}.report.csv"))
    first = run_cli(*args, cwd=tmp_path)
    assert first.code == 0, first.stderr
    night = json.loads(summary.read_text())
    assert night["this_run"]["updated"] == 5 and not night["this_run"]["nothing_to_do"]
    stamp = time.strftime("%H%M%S")
    wait_until(lambda: time.strftime("%H%M%S") != stamp, box.proc, "the next second")
    second = run_cli(*args, cwd=tmp_path)
    assert second.code == 0, second.stderr
    again = json.loads(summary.read_text())
    assert again["updated"] == 5  # the job's totals
    assert again["this_run"] == {
        "requests": 0,
        "updated": 0,
        "created": 0,
        "archived": 0,
        "skipped": 0,
        "failed": 0,
        "not_found": 0,
        "unconfirmed": 0,
        "invalid": 0,
        "nothing_to_do": True,
    }
    assert "this run: nothing to do" in second.stderr
    reports = sorted(tmp_path.glob("close-*.report.csv"))
    assert len(reports) == 2, reports
    assert all(len(read_report(r)) == 5 for r in reports)
    undone = run_cli("undo", str(reports[-1]), cwd=tmp_path)
    assert undone.code == 0, undone.stderr
    assert [box.state()[g]["city"] for g in GUIDS[:5]] == [""] * 5
