"""End to end: the installed ``bulkleads`` command against the real sandbox on a loopback port."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import (
    BULKLEADS,
    SAMPLE,
    TOKEN,
    bare_env,
    interrupt_twice,
    json_lines,
    read_report,
    run_cli,
    said_until,
    wait_until,
    write_seed,
)

GUIDS = [f"{i:032x}" for i in range(1, 61)]
# The sample's one custom field, and a pace the sandboxes below allow (LIMIT).
CUSTOM = ("--custom-field", "Lead Source", "--rate", "100")
LIMIT = ("--limit", "100")


def outcomes_of(report: Path) -> Counter[str]:
    return Counter(r["outcome"] for r in read_report(report))


def city_job(tmp_path: Path, name: str, count: int, town: str) -> tuple[Path, Path]:
    """A seed of ``count`` leads and ``name``.csv setting each one's city to ``town`` + index."""
    seed = write_seed(tmp_path / "seed.json", GUIDS[:count])
    leads = tmp_path / f"{name}.csv"
    leads.write_text(
        "guid,city\n" + "".join(f"{g},{town}{i}\n" for i, g in enumerate(GUIDS[:count]))
    )
    return seed, leads


def copy_sample(tmp_path: Path, name: str = "leads.csv") -> Path:
    target = tmp_path / name
    shutil.copy(SAMPLE / name, target)
    return target


def test_sample_csv_updates_every_valid_lead_once(tmp_path: Path, sandbox) -> None:
    """The sample spreadsheet: one PUT per lead, the right outcome per row, the fields applied."""
    box = sandbox(*LIMIT)
    leads = copy_sample(tmp_path)
    result = run_cli("update", str(leads), *CUSTOM, "--base-url", box.url, cwd=tmp_path)
    assert result.code == 1, result.stderr  # the sample holds invalid rows and an unknown lead
    report = read_report(tmp_path / "leads.report.csv")
    assert [int(r["row"]) for r in report] == list(range(1, 34))
    assert Counter(r["outcome"] for r in report) == {
        "updated": 26,
        "invalid": 4,
        "skipped": 2,  # "nothing to change", and row 4 whose only value row 28 overrode
        "failed": 1,
    }
    stats = box.stats()
    assert set(stats["applied"].values()) == {1}
    assert stats["applied_total"] == 24
    assert stats["requests"] == {"200": 24, "204": 24, "404": 1}  # read, then write
    assert stats["reads"] == 25  # the unknown lead is found missing by its read, never written
    assert stats["off_path"] == []  # the "../../etc/passwd" guid never reached a URL
    lead = box.state()["2e76d88380bc38eabb1933d3f6b8719f"]
    assert lead["city"] == "Austin"
    assert lead["jobTitle"] == 'Head of "Data"'
    assert lead["closedAt"] == 1709251200000
    assert lead["isCustomer"] is True
    conflicted = box.state()["abbeadd60803429f5d9edf6173225994"]
    assert conflicted["city"] == "Providence"  # the later row wins by default
    assert TOKEN not in result.stderr + result.stdout
    assert TOKEN not in (tmp_path / "leads.report.csv").read_text()


def test_jsonl_twin_reaches_the_same_state(tmp_path: Path, sandbox) -> None:
    """The JSONL export of the same rows leaves the portal exactly as the CSV does."""
    csv_box, jsonl_box = sandbox(*LIMIT), sandbox()
    run_cli("update", str(copy_sample(tmp_path)), *CUSTOM, "--base-url", csv_box.url, cwd=tmp_path)
    result = run_cli(
        "update",
        str(copy_sample(tmp_path, "leads.jsonl")),
        *CUSTOM,
        "--base-url",
        jsonl_box.url,
        cwd=tmp_path,
    )
    assert result.code == 1, result.stderr
    assert jsonl_box.state() == csv_box.state()


def test_rerun_resumes_and_sends_nothing_twice(tmp_path: Path, sandbox) -> None:
    """Running the same command again finds the job done and sends no request."""
    box = sandbox(*LIMIT)
    leads = copy_sample(tmp_path)
    first = run_cli("update", str(leads), *CUSTOM, "--base-url", box.url, cwd=tmp_path)
    before = box.stats()
    again = run_cli("update", str(leads), *CUSTOM, "--base-url", box.url, cwd=tmp_path)
    assert again.code == first.code
    assert "resuming job" in again.stderr
    assert box.stats()["requests"] == before["requests"]
    assert (
        Counter(r["outcome"] for r in read_report(tmp_path / "leads.report.csv"))["updated"] == 26
    )


def test_refused_token_stops_and_reports_not_sent(tmp_path: Path, sandbox) -> None:
    """A 401 stops the run: nothing applied, unsent rows not_sent, exit 1, token never shown."""
    box = sandbox(*LIMIT)
    leads = copy_sample(tmp_path)
    wrong = "pat-na1-wrong-token-0123456789"
    result = run_cli(
        "update", str(leads), *CUSTOM, "--base-url", box.url, cwd=tmp_path, token=wrong
    )
    assert result.code == 1
    report = read_report(tmp_path / "leads.report.csv")
    outcomes = Counter(r["outcome"] for r in report)
    assert outcomes["not_sent"] == 27 and outcomes["updated"] == 0
    assert box.stats()["applied_total"] == 0
    assert box.stats()["requests"]["401"] <= 4  # at most what was in flight
    for text in (result.stdout, result.stderr, (tmp_path / "leads.report.csv").read_text()):
        assert wrong not in text
    fixed = run_cli("update", str(leads), *CUSTOM, "--base-url", box.url, cwd=tmp_path)
    assert fixed.code == 1  # resumed with the right token: only the sample's bad rows remain
    assert (
        Counter(r["outcome"] for r in read_report(tmp_path / "leads.report.csv"))["updated"] == 26
    )


def test_daily_quota_defers_then_next_run_finishes(tmp_path: Path, sandbox) -> None:
    """The daily cap stops the run with rows deferred (exit 3); the next run sends the rest."""
    seed, leads = city_job(tmp_path, "close", 20, "Town")
    box = sandbox("--daily", "8", "--limit", "50", seed=seed)
    args = ("update", str(leads), "--base-url", box.url, "--rate", "50", "--no-backup")
    first = run_cli(*args, cwd=tmp_path)
    assert first.code == 3, first.stderr
    assert "run the same command again" in first.stderr
    outcomes = Counter(r["outcome"] for r in read_report(tmp_path / "close.report.csv"))
    assert outcomes["updated"] == 8 and outcomes["deferred"] == 12
    box.configure(daily=1000)
    second = run_cli(*args, cwd=tmp_path)
    assert second.code == 0, second.stderr
    assert Counter(r["outcome"] for r in read_report(tmp_path / "close.report.csv")) == {
        "updated": 20
    }
    assert box.stats()["applied_total"] == 20
    assert all(box.state()[g]["city"] == f"Town{i}" for i, g in enumerate(GUIDS[:20]))


def test_faults_are_retried_until_every_lead_lands(tmp_path: Path, sandbox) -> None:
    """5xx answers and dropped connections are retried, reads and writes alike; every lead
    ends updated."""
    seed, leads = city_job(tmp_path, "faults", 20, "C")
    box = sandbox("--limit", "100", "--fail-rate", "0.25", "--drop-rate", "0.15", seed=seed)
    result = run_cli(
        "update",
        str(leads),
        "--base-url",
        box.url,
        "--rate",
        "100",
        "--max-attempts",
        "12",
        cwd=tmp_path,
    )
    assert result.code == 0, result.stderr
    report = read_report(tmp_path / "faults.report.csv")
    assert {r["outcome"] for r in report} == {"updated"}
    assert all(box.state()[g]["city"] == f"C{i}" for i, g in enumerate(GUIDS[:20]))


def _big_job(tmp_path: Path, count: int, rows: int = 1) -> Path:
    """``count`` leads, each on ``rows`` identical rows (a long report, few requests)."""
    leads = tmp_path / "big.csv"
    leads.write_text(
        "guid,city,isCustomer\n"
        + "".join(f"{g},City{i},yes\n" for _ in range(rows) for i, g in enumerate(GUIDS[:count]))
    )
    return leads


def test_kill_9_at_any_moment_loses_and_repeats_nothing(tmp_path: Path, sandbox) -> None:
    """kill -9 at many moments, then the same command: final state and report are exact."""
    count = 60
    seed = write_seed(tmp_path / "seed.json", GUIDS[:count])
    box = sandbox("--limit", "40", "--latency-ms", "20", seed=seed)
    leads = _big_job(tmp_path, count)
    command = [BULKLEADS, "update", str(leads), "--base-url", box.url, "--rate", "40"]
    env = bare_env()
    delays = [0.05 + 0.15 * i for i in range(10)]  # from preflight to mid-flight
    done_kills = 0
    for delay in delays:
        proc = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            done_kills += 1
        proc.wait()
    final = run_cli("update", str(leads), "--base-url", box.url, "--rate", "40", cwd=tmp_path)
    assert final.code == 0, final.stderr
    report = read_report(tmp_path / "big.report.csv")
    assert [int(r["row"]) for r in report] == list(range(1, count + 1))
    assert {r["outcome"] for r in report} == {"updated"}
    state = box.state()
    assert all(
        state[g]["city"] == f"City{i}" and state[g]["isCustomer"] is True
        for i, g in enumerate(GUIDS[:count])
    )
    assert box.stats()["applied_total"] <= count + 4 * done_kills
    assert done_kills >= 5


def _start_job(
    tmp_path: Path, sandbox, count: int, *flags: str, run_flags: tuple[str, ...] = (), rows: int = 1
):
    """A job at 10 requests/s against a sandbox (``flags``), once the sandbox has applied its
    first three writes: mid-write whatever the machine's load (``proc.args`` runs it again)."""
    seed = write_seed(tmp_path / "seed.json", GUIDS[:count])
    box = sandbox("--limit", "10", *flags, seed=seed)
    leads = _big_job(tmp_path, count, rows)
    command = [BULKLEADS, "update", str(leads), "--base-url", box.url, "--rate", "10"]
    command.append("--no-backup")  # writes from the first second: the signal lands mid-write
    proc = subprocess.Popen(
        [*command, *run_flags],
        cwd=tmp_path,
        env=bare_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    box.wait_for(3, proc)
    return box, proc


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_gracefully_and_resumes(tmp_path: Path, sandbox, signum: int) -> None:
    """Ctrl-C or SIGTERM: requests in flight finish, the report is written, exit 3, the rerun
    completes."""
    count = 40
    box, proc = _start_job(tmp_path, sandbox, count)
    proc.send_signal(signum)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 3, err
    assert "run the same command again" in err
    report = read_report(tmp_path / "big.report.csv")
    outcomes = Counter(r["outcome"] for r in report)
    assert outcomes["updated"] > 0 and outcomes["deferred"] > 0
    assert outcomes["updated"] + outcomes["deferred"] == count
    applied = box.stats()["applied_total"]
    assert applied == outcomes["updated"]  # nothing in flight was lost or left unrecorded
    final = run_cli(*proc.args[1:], cwd=tmp_path)
    assert final.code == 0, final.stderr
    assert box.stats()["applied_total"] == count


def test_dry_run_sends_nothing_and_needs_no_token(tmp_path: Path, sandbox) -> None:
    """--dry-run: plan and example bodies with the token redacted, report of planned rows."""
    box = sandbox(*LIMIT)
    leads = copy_sample(tmp_path)
    result = run_cli(
        "update", str(leads), *CUSTOM, "--base-url", box.url, "--dry-run", cwd=tmp_path, token=None
    )
    assert result.code == 1  # invalid rows in the sample
    assert "example request: PUT" in result.stderr and "access_token=***" in result.stderr
    assert box.stats()["requests"] == {}
    outcomes = Counter(r["outcome"] for r in read_report(tmp_path / "leads.dry-run.report.csv"))
    assert outcomes == {"planned": 27, "invalid": 4, "skipped": 2}


def test_json_logs_for_cron(tmp_path: Path, sandbox) -> None:
    """--log-format json: every stderr line is a JSON object; the summary reconciles."""
    box = sandbox(*LIMIT)
    result = run_cli(
        "update",
        str(copy_sample(tmp_path)),
        *CUSTOM,
        "--base-url",
        box.url,
        "--log-format",
        "json",
        cwd=tmp_path,
    )
    events = [json.loads(line) for line in result.stderr.splitlines()]
    summary = next(e for e in events if e.get("event") == "summary")
    assert summary["rows"] == 33
    outcomes = ("updated", "failed", "invalid", "skipped", "not_sent", "deferred")
    assert sum(summary.get(k, 0) for k in outcomes) == 33
    assert summary["requests"] == 49  # 25 reads (one finds the lead missing), 24 writes


def test_retry_report_and_jobs_commands(tmp_path: Path, sandbox) -> None:
    """After an outage, `retry REPORT` sends only the failed leads; `jobs` and `report` work."""
    seed, leads = city_job(tmp_path, "outage", 6, "R")
    box = sandbox("--limit", "50", "--fail-rate", "1.0", seed=seed)
    first = run_cli(
        "update",
        str(leads),
        "--base-url",
        box.url,
        "--rate",
        "50",
        "--max-attempts",
        "1",
        cwd=tmp_path,
    )
    assert first.code == 1
    report = tmp_path / "outage.report.csv"
    assert outcomes_of(report) == {"failed": 6}
    box.configure(fail_rate=0.0)
    again = run_cli("retry", str(report), "--rate", "50", cwd=tmp_path)
    assert again.code == 0, again.stderr
    assert outcomes_of(report) == {"updated": 6}
    assert box.stats()["applied_total"] == 6
    listing = run_cli("jobs", cwd=tmp_path, env={"COLUMNS": "600"})
    assert "outage.csv" in listing.stdout
    copy = tmp_path / "copy.jsonl"
    rewritten = run_cli("report", str(report), "--report", str(copy), cwd=tmp_path)
    assert rewritten.code == 0
    assert [r["outcome"] for r in read_report(copy)] == ["updated"] * 6


def test_retry_keeps_the_pace_of_the_job(tmp_path: Path, sandbox) -> None:
    """`retry` without --rate sends at the job's --rate, not the API's default of 10/s."""
    seed, leads = city_job(tmp_path, "slow", 8, "S")
    box = sandbox("--limit", "50", "--fail-rate", "1.0", seed=seed)
    flags = ("--base-url", box.url, "--rate", "3", "--max-attempts", "1", "--no-backup")
    assert run_cli("update", str(leads), *flags, cwd=tmp_path).code == 1
    box.configure(fail_rate=0.0)
    again = run_cli("retry", str(tmp_path / "slow.report.csv"), cwd=tmp_path)
    assert again.code == 0, again.stderr
    stats = box.stats()
    assert stats["applied_total"] == 8
    assert stats["peak_arrivals_in_window"] <= 3  # 8 leads at 10/s would put 8 in one second


def test_second_ctrl_c_abandons_open_requests_and_still_reports(tmp_path: Path, sandbox) -> None:
    """Two Ctrl-C: stop waiting for the requests in flight (a latency far past any wait):
    their rows are unconfirmed, never updated or deferred; the report is written, exit 3; the
    rerun reads them back and finishes with nothing lost."""
    count = 40
    box, proc = _start_job(tmp_path, sandbox, count, "--latency-ms", "5000")
    said = interrupt_twice(proc)
    _out, err = proc.communicate(timeout=60)
    err = said + err
    assert proc.returncode == 3, err
    assert "abandoning the requests in flight" in err and "Traceback" not in err
    outcomes = Counter(r["outcome"] for r in read_report(tmp_path / "big.report.csv"))
    assert outcomes["unconfirmed"] >= 1 and outcomes["not_sent"] == 0, outcomes
    assert sum(outcomes.values()) == count
    assert outcomes["updated"] <= box.stats()["applied_total"]  # none claimed unanswered
    box.configure(latency_ms=0)
    final = run_cli(*proc.args[1:], cwd=tmp_path)
    assert final.code == 0, final.stderr
    assert {r["outcome"] for r in read_report(tmp_path / "big.report.csv")} == {"updated"}
    assert count <= box.stats()["applied_total"] <= count + 4


@pytest.mark.parametrize("moment", ["in flight", "writing the report"])
def test_a_third_ctrl_c_exits_at_once_and_the_job_stays_consistent(
    tmp_path: Path, sandbox, moment: str
) -> None:
    """Three Ctrl-C: exit 130 without a report, with the words that say so, whether the third
    comes while requests are in flight or while the report is written; no half report is
    left; the rerun finishes with nothing lost. The run is stopped (SIGSTOP) while the last
    presses are sent, so they land at that moment however busy the machine is."""
    count = 40
    # In flight: answers far off. Writing the report: a long one (50,000 rows), to stop it in.
    latency, per_lead = ("5000", 1) if moment == "in flight" else ("300", 1250)
    box, proc = _start_job(tmp_path, sandbox, count, "--latency-ms", latency, rows=per_lead)
    if moment == "in flight":
        proc.send_signal(signal.SIGINT)
        said = said_until(proc, "finishing requests in flight")  # they wait 5 s for answers
        proc.send_signal(signal.SIGSTOP)
        proc.send_signal(signal.SIGINT)
        proc.send_signal(signal.SIGTERM)  # another signal: two pending ones do not merge
    else:
        said = interrupt_twice(proc, times=2)
        writing = tmp_path / ".big.report.csv.tmp"
        wait_until(writing.exists, proc, "the report was being written")
        proc.send_signal(signal.SIGSTOP)
        assert writing.exists(), "the report was written between two polls"
        proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGCONT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, said + err
    assert "a third time: exiting now" in said + err and "Traceback" not in err
    assert not list(tmp_path.glob(".*.tmp"))  # no half-written report beside the real one
    box.configure(latency_ms=0)
    final = run_cli(*proc.args[1:], cwd=tmp_path)
    assert final.code == 0, final.stderr
    report = read_report(tmp_path / "big.report.csv")
    assert len(report) == count * per_lead and {r["outcome"] for r in report} == {"updated"}


def test_ctrl_c_while_planning_says_the_job_is_consistent(tmp_path: Path, sandbox) -> None:
    """Ctrl-C before any request (the plan of a long file): exit 130 with words, not in
    silence; nothing was sent and the same command then runs the job."""
    box = sandbox("--limit", "100", seed=write_seed(tmp_path / "seed.json", GUIDS[:40]))
    leads = _big_job(tmp_path, 40, rows=2500)  # 100,000 rows: a plan long enough to stop in
    command = [BULKLEADS, "update", str(leads), "--base-url", box.url, "--rate", "100"]
    env = bare_env()
    proc = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As from a terminal: a suite run in the background (`make test &`) ignores SIGINT,
        # and a process started so keeps ignoring it until it sets its own handlers.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    state = Path(env["BULKLEADS_STATE_DIR"])
    wait_until(lambda: any(state.glob(".planning-*")), proc, "planning")
    proc.send_signal(signal.SIGSTOP)
    assert any(state.glob(".planning-*")), "the plan was done between two polls"
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGCONT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted: exiting now; the job file is consistent" in err
    assert "Traceback" not in err and box.stats()["applied_total"] == 0
    final = run_cli(*command[1:], cwd=tmp_path)
    assert final.code == 0, final.stderr
    assert box.stats()["applied_total"] == 40


def test_kill_while_writing_a_big_report_leaves_a_whole_report(tmp_path: Path) -> None:
    """A kill during preflight or report writing never leaves a torn report: the rerun's is
    complete, one line per row."""
    rows = 60_000
    leads = tmp_path / "wide.csv"
    leads.write_text("guid,city\n" + "".join(f"g{i}x,\n" for i in range(rows)))
    report = tmp_path / "wide.dry-run.report.csv"
    command = [BULKLEADS, "update", str(leads), "--dry-run", "--quiet"]
    for delay in (0.6, 1.2, 1.8, 2.4):
        proc = subprocess.Popen(
            command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(delay)
        proc.kill()
        proc.wait()
        if report.exists():  # an earlier run's report, never a partial one
            assert len(read_report(report)) == rows
    final = run_cli("update", str(leads), "--dry-run", "--quiet", cwd=tmp_path, token=None)
    assert final.code == 0, final.stderr
    assert len(read_report(report)) == rows


def test_stdin_input_and_python_dash_m(tmp_path: Path, sandbox) -> None:
    """`-` reads stdin (format sniffed), the report lands in the working folder, and the same
    bytes piped again resume the same job."""
    box = sandbox(*LIMIT)
    data = (SAMPLE / "leads.jsonl").read_bytes()
    command = [sys.executable, "-m", "bulkleads", "update", "-", *CUSTOM, "--base-url", box.url]
    env = bare_env()
    first = subprocess.run(
        command, input=data, cwd=tmp_path, env=env, capture_output=True, timeout=120, check=False
    )
    assert first.returncode == 1, first.stderr
    (report,) = tmp_path.glob("bulkleads-*.report.csv")
    assert outcomes_of(report)["updated"] == 26
    again = subprocess.run(
        command, input=data, cwd=tmp_path, env=env, capture_output=True, timeout=120, check=False
    )
    assert b"resuming job" in again.stderr
    assert box.stats()["applied_total"] == 24


def test_a_signal_under_json_logs_is_a_json_event(tmp_path: Path, sandbox) -> None:
    """With --log-format json, the line that says a signal was taken is a JSON object with an
    event, like every other line."""
    _box, proc = _start_job(tmp_path, sandbox, 40, run_flags=("--log-format", "json"))
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    events = json_lines(err)
    assert all("event" in e for e in events)
    (taken,) = [e for e in events if e["event"] == "signal"]
    assert taken["signal"] == "SIGTERM" and taken["again"] is False


def test_a_dry_run_shows_a_huge_value_cut_with_its_length(tmp_path: Path) -> None:
    """A 1,000,000-character cell is shown cut, with its length, never printed whole."""
    huge = "x" * 1_000_000
    leads = tmp_path / "big.csv"
    leads.write_text(f"guid,message\n8a41f2f22906b93a012906b9438f0008,{huge}\n")
    args = ("update", str(leads), "--dry-run", "--custom-field", "message")
    result = run_cli(*args, cwd=tmp_path, token=None)  # offline: nothing read
    assert result.code == 0, result.stderr[:2000]
    assert "(1,000,000 characters in all)" in result.stderr
    assert max(len(line) for line in result.stderr.splitlines()) < 2_000
