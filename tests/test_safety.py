"""Operator safety: ordinary mistakes never clobber a file, run a job twice or send a typo."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from bulkleads.errors import UsageError
from bulkleads.fields import LEADS_V1, suggestion
from bulkleads.input.text import InputFile
from bulkleads.jobstore.lock import JobLock, JobLocked, is_locked
from bulkleads.jobstore.store import JobStore
from bulkleads.plan.options import PlanOptions
from bulkleads.plan.planner import plan
from bulkleads.report.rows import COLUMNS, check_report_path, write_report
from tests.conftest import BULKLEADS, bare_env, interrupt_twice, read_report, run_cli, write_seed

GUIDS = [f"{i:032x}" for i in range(1, 201)]


def city_file(tmp_path: Path, count: int, name: str = "close.csv", town: str = "T") -> Path:
    path = tmp_path / name
    path.write_text(
        "guid,city\n" + "".join(f"{g},{town}{i}\n" for i, g in enumerate(GUIDS[:count]))
    )
    return path


# -- 1. no file is overwritten unless it is a report bulkleads wrote --------------------------


def test_report_path_that_is_the_input_is_refused_by_name_symlink_and_hard_link(
    tmp_path: Path,
) -> None:
    """The input under any name: refused before anything is read; the input is intact."""
    leads = city_file(tmp_path, 3)
    original = leads.read_bytes()
    (tmp_path / "link.csv").symlink_to(leads)
    os.link(leads, tmp_path / "hard.csv")
    for report in ("close.csv", "link.csv", "hard.csv"):
        result = run_cli(
            "update", str(leads), "--report", report, "--dry-run", cwd=tmp_path, token=None
        )
        assert result.code == 2, result.stderr
        assert "is the input file" in result.stderr and "--report" in result.stderr
    assert leads.read_bytes() == original


def test_an_existing_file_that_is_not_a_report_is_never_overwritten(tmp_path: Path) -> None:
    """A user's file is refused; an empty file or an earlier report may be written."""
    leads = city_file(tmp_path, 3)
    notes = tmp_path / "notes.csv"
    notes.write_text("my,own\ndata,here\n")
    dry = ("update", str(leads), "--dry-run")  # offline: no token
    result = run_cli(*dry, "--report", str(notes), cwd=tmp_path, token=None)
    assert result.code == 2 and "is not a bulkleads report" in result.stderr
    assert notes.read_text() == "my,own\ndata,here\n"
    empty = tmp_path / "empty.csv"
    empty.touch()
    again = run_cli(*dry, "--report", str(empty), cwd=tmp_path, token=None)
    assert again.code == 0, again.stderr
    twice = run_cli(*dry, "--report", str(empty), cwd=tmp_path, token=None)
    assert twice.code == 0 and len(read_report(empty)) == 3  # its own report: rewritten


def test_check_report_path_knows_its_own_reports(tmp_path: Path) -> None:
    """CSV (any delimiter, with a BOM) and JSON lines reports are recognised; others are not."""
    for name, text in {
        "a.csv": "row,line,guid,outcome,status,attempts,error,note,fields\n",
        "b.csv": "\ufeffrow;line;guid;outcome;status;attempts;error;note;fields;changes\n",
        "c.jsonl": json.dumps(dict.fromkeys(COLUMNS, 1)) + "\n",
    }.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        check_report_path(tmp_path / name)
    for name, text in {"d.csv": "guid,city\n", "e.jsonl": '{"guid": "a"}\n'}.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(UsageError, match="not a bulkleads report"):
            check_report_path(tmp_path / name)


def test_report_command_refuses_to_write_over_the_input(tmp_path: Path, sandbox) -> None:
    """`bulkleads report JOB --report INPUT` is refused like `update` is."""
    box = sandbox(seed=write_seed(tmp_path / "seed.json", GUIDS[:3]))
    leads = city_file(tmp_path, 3)
    assert run_cli("update", str(leads), "--base-url", box.url, cwd=tmp_path).code == 0
    original = leads.read_bytes()
    report = tmp_path / "close.report.csv"
    result = run_cli("report", str(report), "--report", str(leads), cwd=tmp_path)
    assert result.code == 2 and "is the input file" in result.stderr
    assert leads.read_bytes() == original


# -- 2. one process per job -------------------------------------------------------------------


def test_two_processes_started_together_never_send_a_lead_twice(tmp_path: Path, sandbox) -> None:
    """Two terminals, one command: one runs, the other exits 2 naming its PID; every lead is
    sent once and the report agrees with the server."""
    count = 60
    box = sandbox(
        "--limit", "40", "--latency-ms", "20", seed=write_seed(tmp_path / "s.json", GUIDS[:count])
    )
    leads = city_file(tmp_path, count)
    command = [BULKLEADS, "update", str(leads), "--base-url", box.url, "--rate", "40"]
    procs = [
        subprocess.Popen(command, cwd=tmp_path, env=bare_env(), stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [(p.wait(timeout=60), p.communicate()[1]) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    winner_pid = next(p.pid for p, (code, _) in zip(procs, results, strict=True) if code == 0)
    assert f"being run by process {winner_pid}" in loser
    stats = box.stats()
    assert stats["applied_total"] == count and set(stats["applied"].values()) == {1}
    report = read_report(tmp_path / "close.report.csv")
    assert Counter(r["outcome"] for r in report) == {"updated": count}
    state = box.state()
    assert all(state[g]["city"] == f"T{i}" for i, g in enumerate(GUIDS[:count]))


def test_fresh_retry_and_report_wait_their_turn_while_a_job_runs(tmp_path: Path, sandbox) -> None:
    """While a job runs, --fresh, retry and report of it exit 2 at once and change nothing.
    The job is long (200 leads at 10 a second) so that it still runs on a loaded machine
    while the three other commands start; it is stopped with Ctrl-C at the end."""
    count = 200
    box = sandbox("--limit", "10", seed=write_seed(tmp_path / "s.json", GUIDS[:count]))
    leads = city_file(tmp_path, count)
    args = ("update", str(leads), "--base-url", box.url, "--rate", "10")
    proc = subprocess.Popen(
        [BULKLEADS, *args], cwd=tmp_path, env=bare_env(), stderr=subprocess.DEVNULL
    )
    report = tmp_path / "close.report.csv"
    try:
        box.wait_for(1, proc, "reads")  # it sends: it holds the job's lock
        jobs = run_cli("jobs", cwd=tmp_path, env={"COLUMNS": "300"})
        job = next(Path(os.environ["BULKLEADS_STATE_DIR"]).glob("*.job.sqlite")).name[:16]
        assert f"{job}\trunning\t" in jobs.stdout
        for other in (
            [*args, "--fresh"],
            ["retry", job],
            ["report", job, "--report", str(tmp_path / "copy.csv")],
        ):
            started = time.monotonic()
            result = run_cli(*other, cwd=tmp_path)
            assert result.code == 2, (other, result.stderr)
            assert f"being run by process {proc.pid}" in result.stderr
            assert time.monotonic() - started < 10  # at once, not after the run
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert not (tmp_path / "copy.csv").exists()
    assert not list(Path(os.environ["BULKLEADS_STATE_DIR"]).glob("*.archived*"))
    outcomes = Counter(r["outcome"] for r in read_report(report))
    assert outcomes["updated"] == box.stats()["applied_total"]  # the report agrees


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    """The lock dies with its process: after kill -9 the next run takes it at once."""
    path = tmp_path / "job.lock"
    holder = subprocess.Popen(
        [
            "python3",
            "-c",
            "import fcntl, os, sys, time\n"
            f"fd = os.open({str(path)!r}, os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "os.write(fd, str(os.getpid()).encode())\n"
            "print('held', flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    with pytest.raises(JobLocked) as refused:
        JobLock(path, "j").acquire()
    assert refused.value.pid == holder.pid and is_locked(path)
    holder.kill()
    holder.communicate()
    with JobLock(path, "j"):
        assert is_locked(path)
    assert not is_locked(path)


# -- 3. a job is the same job wherever it is started from --------------------------------------


def test_the_same_command_from_another_folder_resumes_the_same_job(
    tmp_path: Path, sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cron runs in $HOME: the job lives in the user's state directory, not in the cwd."""
    monkeypatch.delenv("BULKLEADS_STATE_DIR")
    xdg = {"XDG_STATE_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path)}
    box = sandbox(seed=write_seed(tmp_path / "s.json", GUIDS[:20]))
    leads = city_file(tmp_path, 20)
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir(), there.mkdir()
    args = ("update", str(leads), "--base-url", box.url, "--rate", "50")
    assert run_cli(*args, cwd=here, env=xdg).code == 0
    again = run_cli(*args, cwd=there, env=xdg)
    assert again.code == 0 and "resuming job" in again.stderr
    assert box.stats()["applied_total"] == 20
    assert list((tmp_path / "xdg" / "bulkleads").glob("*.job.sqlite"))
    assert not (here / ".bulkleads").exists()


def test_a_job_under_the_old_default_folder_is_found_and_moved_once(
    tmp_path: Path, sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job started under ./.bulkleads resumes from the new default, said once."""
    monkeypatch.delenv("BULKLEADS_STATE_DIR")
    xdg = {"XDG_STATE_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path)}
    box = sandbox("--daily", "5", seed=write_seed(tmp_path / "s.json", GUIDS[:10]))
    leads = city_file(tmp_path, 10)
    args = ("update", str(leads), "--base-url", box.url, "--rate", "50")
    old = run_cli(*args, "--state-dir", ".bulkleads", cwd=tmp_path, env=xdg)
    assert old.code == 3  # the daily cap deferred half of it
    box.configure(daily=1000)
    moved = run_cli(*args, cwd=tmp_path, env=xdg)
    assert moved.code == 0, moved.stderr
    assert "the old default folder" in moved.stderr and "resuming job" in moved.stderr
    assert box.stats()["applied_total"] == 10  # the five sent before were not sent again
    assert not list((tmp_path / ".bulkleads").glob("*.job.sqlite"))
    third = run_cli(*args, cwd=tmp_path, env=xdg)
    assert "old default folder" not in third.stderr and "resuming job" in third.stderr


# -- 4. a typo never reaches the portal -------------------------------------------------------


def test_typos_of_standard_fields_stop_the_run_with_did_you_mean(tmp_path: Path, sandbox) -> None:
    """closed_at, is_customer, City, isCustomr: exit 2 naming each with the field meant."""
    box = sandbox(seed=write_seed(tmp_path / "s.json", GUIDS[:1]))
    leads = tmp_path / "typo.csv"
    leads.write_text(f"guid,closed_at,is_customer,City,isCustomr\n{GUIDS[0]},2024-01-01,yes,X,no\n")
    result = run_cli("update", str(leads), "--base-url", box.url, cwd=tmp_path)
    assert result.code == 2, result.stderr
    for typo, meant in [
        ("closed_at", "closedAt"),
        ("is_customer", "isCustomer"),
        ("City", "city"),
        ("isCustomr", "isCustomer"),
    ]:
        assert f"'{typo}' (did you mean {meant}?)" in result.stderr
    allowed = run_cli(
        "update", str(leads), "--base-url", box.url, "--allow-custom-fields", cwd=tmp_path
    )
    assert allowed.code == 2  # allowing custom fields does not allow typos
    assert box.stats()["requests"] == {}


def test_custom_fields_are_sent_only_when_named(tmp_path: Path, sandbox) -> None:
    """A field that is no standard one: exit 2 listing it, unless --custom-field names it or
    --allow-custom-fields allows every such field; JSONL is checked before any request too."""
    box = sandbox(seed=write_seed(tmp_path / "s.json", GUIDS[:2]))
    leads = tmp_path / "custom.csv"
    leads.write_text(f"guid,region,tier\n{GUIDS[0]},EMEA,gold\n")
    refused = run_cli("update", str(leads), "--base-url", box.url, cwd=tmp_path)
    assert refused.code == 2 and "region, tier" in refused.stderr
    assert "--custom-field" in refused.stderr
    partly = run_cli(
        "update", str(leads), "--base-url", box.url, "--custom-field", "region", cwd=tmp_path
    )
    assert partly.code == 2 and "tier" in partly.stderr and "region," not in partly.stderr
    jsonl = tmp_path / "custom.jsonl"
    jsonl.write_text(json.dumps({"guid": GUIDS[1], "city": "A"}) + "\n")
    jsonl.write_text(jsonl.read_text() + json.dumps({"guid": GUIDS[1], "Region": "x"}) + "\n")
    late = run_cli("update", str(jsonl), "--base-url", box.url, cwd=tmp_path)
    assert late.code == 2 and "Region" in late.stderr
    assert box.stats()["requests"] == {}
    named = ("--custom-field", "region", "--custom-field", "tier")
    sent = run_cli("update", str(leads), "--base-url", box.url, *named, cwd=tmp_path)
    assert sent.code == 0, sent.stderr
    assert "custom fields, sent as given: region, tier" in sent.stderr
    assert box.state()[GUIDS[0]]["region"] == "EMEA"


def test_suggestion_catches_case_separators_and_small_edits_only() -> None:
    """The typo rule itself: near misses map to the field; real custom names do not."""
    known = LEADS_V1.known
    assert suggestion("closed_at", known) == "closedAt"
    assert suggestion("Closed At", known) == "closedAt"
    assert suggestion("EMAIL-OPT-OUT", known) == "emailOptOut"
    assert suggestion("compnay", known) == "company"
    for custom in ("region", "tier", "Lead Source", "favorite_color", "annual_budget"):
        assert suggestion(custom, known) is None, custom


# -- 5. no mojibake is ever sent --------------------------------------------------------------


def test_utf8_file_with_a_single_byte_encoding_sends_nothing(tmp_path: Path, sandbox) -> None:
    """--encoding cp1252 on a UTF-8 file: exit 2 saying so; the default reads it right."""
    box = sandbox(seed=write_seed(tmp_path / "s.json", GUIDS[:1]))
    leads = tmp_path / "names.csv"
    leads.write_text(f"guid,firstName\n{GUIDS[0]},José\n", encoding="utf-8")
    args = ("update", str(leads), "--base-url", box.url)
    wrong = run_cli(*args, "--encoding", "cp1252", cwd=tmp_path)
    assert wrong.code == 2 and "is UTF-8 text" in wrong.stderr
    assert box.stats()["requests"] == {}
    right = run_cli(*args, cwd=tmp_path)
    assert right.code == 0 and "encoding: utf-8 (auto)" in right.stderr
    assert box.state()[GUIDS[0]]["firstName"] == "José"


# -- 6. a dry run never touches a job that has sent --------------------------------------------


def test_dry_run_after_a_real_run_keeps_its_report_and_state(tmp_path: Path, sandbox) -> None:
    """The real report and the job stay as they were; the dry run says what is left."""
    box = sandbox("--daily", "4", seed=write_seed(tmp_path / "s.json", GUIDS[:8]))
    leads = city_file(tmp_path, 8)
    args = ("update", str(leads), "--base-url", box.url, "--no-backup")
    assert run_cli(*args, cwd=tmp_path).code == 3
    report = tmp_path / "close.report.csv"
    before = report.read_bytes()
    state_dir = Path(os.environ["BULKLEADS_STATE_DIR"])
    (job_file,) = state_dir.glob("*.job.sqlite")
    with JobStore(job_file) as store:
        states = store.bundle_states()
    dry = run_cli(*args, "--dry-run", cwd=tmp_path, token=None)
    assert dry.code == 0, dry.stderr
    assert "4 leads already updated; running it would send 4 more" in dry.stderr
    assert report.read_bytes() == before
    assert {r["outcome"] for r in read_report(tmp_path / "close.dry-run.report.csv")} == {"planned"}
    with JobStore(job_file) as store:
        assert store.bundle_states() == states
    pointed = run_cli(*args, "--dry-run", "--report", str(report), cwd=tmp_path, token=None)
    assert pointed.code == 2 and "is the report of job" in pointed.stderr
    assert report.read_bytes() == before


# -- 7. outcomes tell the truth ---------------------------------------------------------------


def test_after_a_second_ctrl_c_unsent_rows_are_deferred_not_not_sent(
    tmp_path: Path, sandbox
) -> None:
    """A second Ctrl-C leaves leads unsent: the report calls them deferred, never not_sent;
    the requests it abandoned are unconfirmed."""
    count = 40
    box = sandbox(
        "--limit", "20", "--latency-ms", "300", seed=write_seed(tmp_path / "s.json", GUIDS[:count])
    )
    leads = city_file(tmp_path, count)
    proc = subprocess.Popen(
        [BULKLEADS, "update", str(leads), "--base-url", box.url, "--rate", "20"],
        cwd=tmp_path,
        env=bare_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    box.wait_for(3, proc, "reads")
    interrupt_twice(proc)
    proc.communicate(timeout=30)
    assert proc.returncode == 3
    (job_file,) = Path(os.environ["BULKLEADS_STATE_DIR"]).glob("*.job.sqlite")
    result = run_cli("report", str(job_file), cwd=tmp_path)
    assert result.code == 3, result.stderr
    outcomes = Counter(r["outcome"] for r in read_report(tmp_path / "close.report.csv"))
    assert outcomes["not_sent"] == 0 and outcomes["deferred"] > 0
    assert outcomes["updated"] + outcomes["deferred"] + outcomes["unconfirmed"] == count


def test_a_row_whose_values_all_lost_is_skipped_and_lists_only_what_it_sent(
    tmp_path: Path,
) -> None:
    """Later rows override every value of row 1: skipped, naming the winners; row 2 lost one
    of two values: updated, its fields only the one sent."""
    path = tmp_path / "in.csv"
    path.write_text("guid,city,state\na,X,MA\na,Y,CA\na,,NY\nb,Z,\n")
    with JobStore(tmp_path / "j.sqlite") as store, InputFile(str(path)) as source:
        plan(source, store, PlanOptions())
        store.mark([("done", 204, 1, None, "a"), ("done", 204, 1, None, "b")])
        write_report(store, tmp_path / "r.csv")
    rows = read_report(tmp_path / "r.csv")
    assert [(r["outcome"], r["fields"]) for r in rows] == [
        ("skipped", ""),
        ("updated", "city"),
        ("updated", "state"),
        ("updated", "city"),
    ]
    assert rows[0]["note"] == "city overridden by row 2; state overridden by row 2"
    assert rows[1]["note"] == "state overridden by row 3"


# -- 8. damage is named, not thrown -----------------------------------------------------------


def test_a_damaged_job_file_is_named_listed_and_freshened(tmp_path: Path, sandbox) -> None:
    """First 4 KiB overwritten: the rerun exits 2 naming the file and --fresh, `jobs` lists it
    as unreadable beside the healthy job, and --fresh starts over."""
    box = sandbox(seed=write_seed(tmp_path / "s.json", GUIDS[:6]))
    leads = city_file(tmp_path, 3)
    other = city_file(tmp_path, 6, name="other.csv", town="O")
    args = ("--base-url", box.url, "--rate", "50")
    assert run_cli("update", str(leads), *args, cwd=tmp_path).code == 0
    assert run_cli("update", str(other), *args, cwd=tmp_path).code == 0
    state_dir = Path(os.environ["BULKLEADS_STATE_DIR"])
    damaged = min(state_dir.glob("*.job.sqlite"), key=lambda p: p.stat().st_mtime)
    with damaged.open("r+b") as f:
        f.write(b"\xff" * 4096)
    rerun = run_cli("update", str(leads), *args, cwd=tmp_path)
    assert rerun.code == 2, rerun.stderr
    assert str(damaged) in rerun.stderr and "--fresh" in rerun.stderr
    assert "Traceback" not in rerun.stderr
    listing = run_cli("jobs", cwd=tmp_path, env={"COLUMNS": "400"})
    assert listing.code == 0, listing.stderr
    assert "unreadable" in listing.stdout and "other.csv" in listing.stdout
    fresh = run_cli("update", str(leads), *args, "--fresh", cwd=tmp_path)
    assert fresh.code == 0, fresh.stderr
    assert list(state_dir.glob("*.archived.job.sqlite"))


def test_an_empty_job_file_is_damaged_not_a_finished_job(tmp_path: Path, sandbox) -> None:
    """A job file emptied to 0 bytes (a full disk, a careless copy) is no finished job: the
    rerun and `report` exit 2 naming the file and --fresh, and leave the report alone."""
    box = sandbox(seed=write_seed(tmp_path / "s.json", GUIDS[:3]))
    leads = city_file(tmp_path, 3)
    args = ("update", str(leads), "--base-url", box.url, "--rate", "50")
    assert run_cli(*args, cwd=tmp_path).code == 0
    report = tmp_path / "close.report.csv"
    before = report.read_bytes()
    (job_file,) = Path(os.environ["BULKLEADS_STATE_DIR"]).glob("*.job.sqlite")
    for companion in (job_file, Path(f"{job_file}-wal"), Path(f"{job_file}-shm")):
        if companion.exists():
            companion.write_bytes(b"")
    for command in (args, ("report", str(job_file))):
        ran = run_cli(*command, cwd=tmp_path)
        assert ran.code == 2, ran.stderr
        assert str(job_file) in ran.stderr and "--fresh" in ran.stderr
        assert "Traceback" not in ran.stderr
    assert report.read_bytes() == before


def test_a_dry_run_whose_token_is_refused_does_not_exit_0(tmp_path: Path, sandbox) -> None:
    """Reading with a refused token stops the dry run's reads: exit 1, and it says so."""
    box = sandbox(seed=write_seed(tmp_path / "s.json", GUIDS[:3]))
    leads = city_file(tmp_path, 3)
    ran = run_cli(
        "update", str(leads), "--base-url", box.url, "--dry-run", cwd=tmp_path, token="pat-wrong"
    )
    assert ran.code == 1, ran.stderr
    assert "refused the token" in ran.stderr


def test_a_report_given_as_input_is_refused_naming_retry(tmp_path: Path, sandbox) -> None:
    """Feeding a report back as an input would send row, outcome and status as fields to
    every lead: exit 2, nothing sent, and the command that does what was meant."""
    box = sandbox(seed=write_seed(tmp_path / "s.json", GUIDS[:3]))
    leads = city_file(tmp_path, 3)
    args = ("--base-url", box.url, "--rate", "50")
    assert run_cli("update", str(leads), *args, cwd=tmp_path).code == 0
    sent = box.stats()["applied_total"]
    report = tmp_path / "close.report.csv"
    for extra in ((), ("--allow-custom-fields",)):
        again = run_cli("update", str(report), *args, *extra, cwd=tmp_path)
        assert again.code == 2, again.stderr
        assert f"bulkleads retry {report}" in again.stderr
    assert box.stats()["applied_total"] == sent


def test_leftovers_of_a_killed_plan_are_removed_by_the_next_run(tmp_path: Path) -> None:
    """A scratch plan file of a process that is gone (kill -9 while planning) is removed by
    the next run; one of a live process is left alone."""
    state = Path(os.environ["BULKLEADS_STATE_DIR"])
    state.mkdir(parents=True, exist_ok=True)
    gone = subprocess.Popen(["true"])
    gone.wait()
    dead = state / f".planning-{gone.pid}-1.job.sqlite"
    alive = state / f".planning-{os.getpid()}-2.job.sqlite"
    for path in (dead, Path(f"{dead}-wal"), alive):
        path.write_bytes(b"x" * 1024)
    leads = city_file(tmp_path, 2)
    assert run_cli("update", str(leads), "--dry-run", cwd=tmp_path, token=None).code == 0
    assert not dead.exists() and not Path(f"{dead}-wal").exists()
    assert alive.exists()


def test_an_unwritable_state_directory_is_exit_2_naming_it(tmp_path: Path) -> None:
    """A state directory the run cannot write: exit 2 naming it and --state-dir, no
    traceback."""
    state = tmp_path / "state"
    state.mkdir()
    (state / "blocker").write_text("")
    blocked = state / "blocker" / "jobs"  # a path under a file: no user can create it
    leads = city_file(tmp_path, 2)
    ran = run_cli(
        "update", str(leads), "--dry-run", "--state-dir", str(blocked), cwd=tmp_path, token=None
    )
    assert ran.code == 2, ran.stderr
    assert str(blocked) in ran.stderr and "--state-dir" in ran.stderr
    assert "Traceback" not in ran.stderr


def test_inputs_of_the_same_stem_never_share_a_report(tmp_path: Path) -> None:
    """closes.csv and closes.jsonl side by side: each dry run writes its own report, and
    neither replaces the other's."""
    (tmp_path / "closes.csv").write_text(f"guid,city\n{GUIDS[0]},A\n")
    (tmp_path / "closes.jsonl").write_text(json.dumps({"guid": GUIDS[1], "city": "B"}) + "\n")
    for name in ("closes.csv", "closes.jsonl"):
        ran = run_cli("update", name, "--dry-run", cwd=tmp_path, token=None)
        assert ran.code == 0, ran.stderr
    from_csv = read_report(tmp_path / "closes.dry-run.report.csv")
    from_jsonl = read_report(tmp_path / "closes.jsonl.dry-run.report.csv")
    assert [r["guid"] for r in from_csv] == [GUIDS[0]]
    assert [r["guid"] for r in from_jsonl] == [GUIDS[1]]


# The real CLI, with the disk filling up under the report: every write of a report's
# temporary file fails as a full disk does.
_FULL_DISK = """
import builtins, errno, sys
real_open = builtins.open
def open_(file, *args, **kwargs):
    if str(file).endswith(".report.csv.tmp"):
        raise OSError(errno.ENOSPC, "No space left on device")
    return real_open(file, *args, **kwargs)
builtins.open = open_
from bulkleads.commands.app import main
sys.argv = ["bulkleads", *sys.argv[1:]]
main()
"""


def test_a_full_disk_after_sending_keeps_the_job_and_says_how_to_report_it(
    tmp_path: Path, sandbox
) -> None:
    seed = write_seed(tmp_path / "seed.json", GUIDS[:3])
    box = sandbox(seed=seed)
    leads = city_file(tmp_path, 3)
    summary = tmp_path / "summary.json"
    args = ["update", str(leads), "--base-url", box.url, "--summary", str(summary)]
    full = subprocess.run(
        [sys.executable, "-c", _FULL_DISK, *args],
        cwd=tmp_path,
        env=bare_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert full.returncode == 4, full.stderr
    assert "Traceback" not in full.stderr
    assert "No space left on device" in full.stderr
    assert box.stats()["applied_total"] == 3  # sent, and kept:
    (job,) = (p.name.split(".")[0] for p in (tmp_path / "state").glob("*.sqlite"))
    assert f"bulkleads report {job}" in full.stderr
    assert json.loads(summary.read_text())["exit_code"] == 4
    assert not list(tmp_path.glob(".*.tmp")) and not (tmp_path / "close.report.csv").exists()
    again = run_cli("report", job, cwd=tmp_path)
    assert again.code == 0, again.stderr
    assert [r["outcome"] for r in read_report(tmp_path / "close.report.csv")] == ["updated"] * 3


def test_a_full_state_disk_is_said_as_such_not_as_a_damaged_job(tmp_path: Path) -> None:
    """SQLite's "database or disk is full" (made real here by capping the file's pages) is
    the disk's fault, not the job file's: the error says so and keeps what was recorded."""
    from bulkleads.jobstore.store import StateDiskFull

    with JobStore(tmp_path / "job.sqlite") as store:
        store.add_rows([(1, 2, "g1x", "{}", "city", None)])
        pages = store._db.execute("PRAGMA page_count").fetchone()[0]
        store._db.execute(f"PRAGMA max_page_count = {pages}")
        rows = (
            (n, n + 1, f"g{n}x", '{"city": "' + "x" * 500 + '"}', "city", None)
            for n in range(2, 5000)
        )
        with pytest.raises(StateDiskFull, match="disk is full or read-only") as caught:
            store.add_rows(rows)
        assert "damaged" not in str(caught.value)
        assert [r.guid for r in store.report_rows()] == ["g1x"]  # what was recorded is kept
