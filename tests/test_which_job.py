"""Each command acts on the right job: a report leads back to the job that wrote it last,
jobs of one portal and object do not run over each other, and an unfinished job is never
silently replaced by a new one."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import read_report, run_cli
from .test_backup import FAST, GUIDS, seed_leads


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
