"""Each command acts on the right job: a report leads back to the job that wrote it last,
jobs of one portal and object do not run over each other, and an unfinished job is never
silently replaced by a new one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

from tests.conftest import BULKLEADS, bare_env, read_report, run_cli
from tests.test_backup import FAST, GUIDS, seed_leads


def _two_jobs_one_report(tmp_path: Path, box) -> Path:
    """Job A sets city on leads 0-1, then job B on leads 2-3, both writing report r.csv."""
    report = tmp_path / "r.csv"
    for name, guids in (("a.csv", GUIDS[:2]), ("b.csv", GUIDS[2:4])):
        path = tmp_path / name
        path.write_text("guid,city\n" + "".join(f"{g},{name[0].upper()}\n" for g in guids))
        ran = run_cli(
            "update", str(path), "--base-url", box.url, "--report", str(report), *FAST, cwd=tmp_path
        )
        assert ran.code == 0, ran.stderr
    return report


def test_a_report_two_jobs_wrote_leads_to_the_last(tmp_path: Path, sandbox) -> None:
    """`undo r.csv` undoes the job that wrote r.csv last (B), never the first; `report r.csv`
    writes B's rows again, not A's over them."""
    box = sandbox("--limit", "200", seed=seed_leads(tmp_path / "seed.json", 4))
    report = _two_jobs_one_report(tmp_path, box)
    again = run_cli("report", str(report), cwd=tmp_path)
    assert again.code == 0, again.stderr
    assert [r["guid"] for r in read_report(report)] == GUIDS[2:4]
    undone = run_cli("undo", str(report), *FAST, cwd=tmp_path)
    assert undone.code == 0, undone.stderr
    state = box.state()
    assert [state[g]["city"] for g in GUIDS[:4]] == ["A", "A", "Old2", "Old3"]


def test_a_report_changed_since_names_the_candidate_jobs(tmp_path: Path, sandbox) -> None:
    """When the file no longer shows which of its writers wrote it last (edited since), undo
    is exit 2 listing both jobs with their ids and times; nothing is sent."""
    box = sandbox("--limit", "200", seed=seed_leads(tmp_path / "seed.json", 4))
    report = _two_jobs_one_report(tmp_path, box)
    with report.open("a") as f:
        f.write("\n")  # opened and saved in a spreadsheet
    jobs = run_cli("jobs", "--json", cwd=tmp_path)
    applied = box.stats()["applied_total"]
    undone = run_cli("undo", str(report), *FAST, cwd=tmp_path)
    assert undone.code == 2, undone.stderr
    assert "written by 2 jobs" in undone.stderr
    ids = [job["job"] for job in json.loads(jobs.stdout)]
    assert len(ids) == 2 and all(i in undone.stderr for i in ids), (ids, undone.stderr)
    assert "planned 20" in undone.stderr  # each with its time
    assert box.stats()["applied_total"] == applied


def test_a_second_job_on_the_same_portal_and_object_waits_its_turn(tmp_path: Path, sandbox) -> None:
    """While job A writes leads on a portal, job B (another file) exits 2 at once
    naming A's job and process, and send nothing; --alongside-running-jobs lets B go."""
    box = sandbox("--limit", "10", seed=seed_leads(tmp_path / "seed.json", 100))
    slow = tmp_path / "a.csv"
    slow.write_text("guid,city\n" + "".join(f"{g},A\n" for g in GUIDS[:90]))
    other = tmp_path / "b.csv"
    other.write_text("guid,city\n" + "".join(f"{g},B\n" for g in GUIDS[90:100]))
    proc = subprocess.Popen(
        [BULKLEADS, "update", str(slow), "--base-url", box.url, "--rate", "10", "--no-backup"],
        cwd=tmp_path,
        env=bare_env(),
        stderr=subprocess.DEVNULL,
    )
    try:
        box.wait_for(1, proc)  # A writes: it holds the portal's leads
        (job,) = (p.name[:16] for p in Path(os.environ["BULKLEADS_STATE_DIR"]).glob("*.job.sqlite"))
        refused = run_cli("update", str(other), "--base-url", box.url, *FAST, cwd=tmp_path)
        assert refused.code == 2, refused.stderr
        assert f"job {job} (process {proc.pid}) is writing leads" in refused.stderr
        assert "--alongside-running-jobs" in refused.stderr
        assert all(box.state()[g]["city"] != "B" for g in GUIDS[90:100])
        beside = run_cli(
            "update", str(other), "--base-url", box.url, "--alongside-running-jobs", cwd=tmp_path
        )
        assert beside.code == 0, beside.stderr
        assert all(box.state()[g]["city"] == "B" for g in GUIDS[90:100])
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


def _deferred_job(tmp_path: Path, sandbox) -> tuple[object, list[str], str]:
    """A 20-lead job stopped by the daily limit after 6 writes; the input then changes (a row
    edited, a row appended)."""
    box = sandbox("--limit", "100", "--daily", "6", seed=seed_leads(tmp_path / "seed.json", 30))
    leads = tmp_path / "close.csv"
    leads.write_text("guid,city\n" + "".join(f"{g},C{i}\n" for i, g in enumerate(GUIDS[:20])))
    args = ["update", str(leads), "--base-url", box.url, "--no-backup", *FAST]
    assert run_cli(*args, cwd=tmp_path).code == 3
    (job,) = (info["job"] for info in json.loads(run_cli("jobs", "--json", cwd=tmp_path).stdout))
    text = leads.read_text().replace(",C3\n", ",Edited\n") + f"{GUIDS[25]},New\n"
    leads.write_text(text)
    box.configure(daily=None)
    return box, args, job


def test_a_changed_input_names_the_unfinished_job_and_retry_finishes_it(
    tmp_path: Path, sandbox
) -> None:
    """After a stop, an edited input is refused (exit 2) naming the unfinished job, its
    progress and how to finish it; nothing is sent and its report stays. `retry JOB` then
    finishes that job from its own file (the rows as planned, not today's)."""
    box, args, job = _deferred_job(tmp_path, sandbox)
    report = tmp_path / "close.report.csv"
    before = report.read_bytes()
    applied = box.stats()["applied_total"]
    changed = run_cli(*args, cwd=tmp_path)
    assert changed.code == 2, changed.stderr
    assert f"unfinished job {job}" in changed.stderr
    assert "6 done, 14 not sent yet" in changed.stderr
    assert f"bulkleads retry {job}" in changed.stderr and "--fresh" in changed.stderr
    assert box.stats()["applied_total"] == applied and report.read_bytes() == before
    finished = run_cli("retry", job, *FAST, cwd=tmp_path)
    assert finished.code == 0, finished.stderr
    assert "14 leads not sent yet" in finished.stderr
    state = box.state()
    assert [state[g]["city"] for g in GUIDS[:20]] == [f"C{i}" for i in range(20)]
    assert {r["outcome"] for r in read_report(report)} == {"updated"}


def test_fresh_archives_the_unfinished_job_of_a_changed_input_and_says_so(
    tmp_path: Path, sandbox
) -> None:
    """--fresh runs the changed file as a new job, archiving the unfinished one (listed by
    `jobs --all`) and saying so."""
    box, args, job = _deferred_job(tmp_path, sandbox)
    ran = run_cli(*args, "--fresh", cwd=tmp_path)
    assert ran.code == 0, ran.stderr
    assert f"--fresh: the unfinished job {job}" in ran.stderr
    every = json.loads(run_cli("jobs", "--all", "--json", cwd=tmp_path).stdout)
    assert sorted(r["status"] for r in every) == ["archived", "done"]
    assert box.state()[GUIDS[3]]["city"] == "Edited" and box.state()[GUIDS[25]]["city"] == "New"
