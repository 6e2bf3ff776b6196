"""Know the portal before writing: backup, skip what is already so, undo, verify, diff."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
from collections import Counter
from pathlib import Path

import httpx

from bulkleads.fields import LEADS_V1, same
from bulkleads.jobstore.store import JobStore
from bulkleads.send.decide import decide
from tests.conftest import SAMPLE, json_lines, read_report, run_cli

GUIDS = [f"{i:032x}" for i in range(1, 101)]
FAST = ("--rate", "200")


def seed_leads(path: Path, count: int, **fields: object) -> Path:
    """Leads holding every field the tests change, so that a restore can be exact."""
    path.write_text(
        json.dumps(
            [
                {"guid": g, "city": f"Old{i}", "closedAt": 0, "isCustomer": False, **fields}
                for i, g in enumerate(GUIDS[:count])
            ]
        )
    )
    return path


def close_file(path: Path, count: int) -> Path:
    path.write_text(
        "guid,city,closedAt,isCustomer\n"
        + "".join(f"{g},New{i},2024-03-01,yes\n" for i, g in enumerate(GUIDS[:count]))
    )
    return path


# -- the decision, as a pure function ---------------------------------------------------------


def test_values_compare_as_hubspot_shows_them() -> None:
    """Typed Leads v1 values and CRM v3 strings meet; zip codes keep their zeros."""
    assert same(True, "true") and same(5, "5.0") and same(None, "")
    assert same(1709251200000, "2024-03-01T00:00:00Z") and same("1709251200000", "2024-03-01")
    assert not same("02134", "2134") and not same(1, True) and not same("", 0)


def test_decide_sends_only_what_changes_and_keeps_what_only_empty_protects() -> None:
    """Equal fields leave the body; --only-empty keeps a value that is there; all equal is
    skipped; the backup holds every planned field's current value."""
    planned = {"city": "A", "state": "MA", "zip": "02134"}
    current = {"city": "A", "state": "NH", "zip": ""}
    decision = decide(planned, current)
    assert decision.body == {"state": "MA", "zip": "02134"} and decision.skip is None
    assert decision.before == current
    kept = decide(planned, current, only_empty={"state", "zip"})
    assert kept.body == {"zip": "02134"} and kept.note == 'kept by --only-empty: state "NH"'
    everything = decide(planned, current, only_empty={"all"})
    assert everything.body == {"zip": "02134"}
    assert decide({"city": "A"}, {"city": "A"}).skip == "already up to date"
    closed = decide(
        {"closedAt": 1}, {"closedAt": 0}, only_empty={"closedAt"}, is_empty=LEADS_V1.is_empty
    )
    assert closed.body == {"closedAt": 1}  # an open lead's closedAt 0 is empty


def test_decide_skips_a_lead_changed_since_the_job_unless_forced() -> None:
    """Undo: a lead that no longer holds what the job wrote is named, field and both values."""
    moved = decide({"city": "Old"}, {"city": "Someone"}, expect={"city": "New"})
    assert moved.body == {} and moved.skip == (
        'changed since the job: city is now "Someone", the job wrote "New"'
    )
    forced = decide({"city": "Old"}, {"city": "Someone"}, expect={"city": "New"}, force=True)
    assert forced.body == {"city": "Old"}


# -- Leads v1 end to end ----------------------------------------------------------------------


def test_job_then_undo_restores_the_seed_exactly_and_undo_of_undo_the_job(
    tmp_path: Path, sandbox
) -> None:
    """A job overwrites 30 leads; undo puts every value back; undoing the undo restores the
    job's values. Each step is a job with its own report."""
    box = sandbox("--limit", "200", seed=seed_leads(tmp_path / "seed.json", 30))
    seed = box.state()
    leads = close_file(tmp_path / "close.csv", 30)
    assert run_cli("update", str(leads), "--base-url", box.url, *FAST, cwd=tmp_path).code == 0
    done = box.state()
    assert all(done[g]["city"] == f"New{i}" for i, g in enumerate(GUIDS[:30]))
    report = read_report(tmp_path / "close.report.csv")
    assert json.loads(report[0]["changes"]) == {
        "city": ["Old0", "New0"],
        "closedAt": [0, 1709251200000],
        "isCustomer": [False, True],
    }
    undone = run_cli("undo", str(tmp_path / "close.report.csv"), *FAST, cwd=tmp_path)
    assert undone.code == 0, undone.stderr
    assert box.state() == seed
    undo_report = tmp_path / "close.undo.report.csv"
    assert Counter(r["outcome"] for r in read_report(undo_report)) == {"updated": 30}
    redo = run_cli("undo", str(undo_report), *FAST, cwd=tmp_path)
    assert redo.code == 0, redo.stderr
    assert box.state() == done


def test_undo_skips_exactly_the_leads_another_client_changed(tmp_path: Path, sandbox) -> None:
    """Leads edited after the job keep the edit, each noted with field and both values;
    --force puts the backup over them too."""
    box = sandbox("--limit", "200", seed=seed_leads(tmp_path / "seed.json", 10))
    leads = close_file(tmp_path / "close.csv", 10)
    assert run_cli("update", str(leads), "--base-url", box.url, *FAST, cwd=tmp_path).code == 0
    edited = GUIDS[2:5]
    for guid in edited:  # another client closes these three itself
        httpx.put(
            f"{box.url}/leads/v1/lead/{guid}?access_token=sandbox-token",
            json={"guid": guid, "city": "Edited"},
        ).raise_for_status()
    result = run_cli("undo", str(tmp_path / "close.report.csv"), *FAST, cwd=tmp_path)
    assert result.code == 0, result.stderr
    rows = read_report(tmp_path / "close.undo.report.csv")
    skipped = {r["guid"]: r["note"] for r in rows if r["outcome"] == "skipped"}
    assert set(skipped) == set(edited)
    assert skipped[edited[0]] == 'changed since the job: city is now "Edited", the job wrote "New2"'
    state = box.state()
    assert [state[g]["city"] for g in GUIDS[:10]] == [
        "Old0", "Old1", "Edited", "Edited", "Edited", "Old5", "Old6", "Old7", "Old8", "Old9",
    ]  # fmt: skip
    forced = run_cli("undo", str(tmp_path / "close.report.csv"), "--force", *FAST, cwd=tmp_path)
    assert forced.code == 0, forced.stderr
    assert [box.state()[g]["city"] for g in edited] == ["Old2", "Old3", "Old4"]


def test_undo_dry_run_previews_and_writes_nothing(tmp_path: Path, sandbox) -> None:
    """undo --dry-run reads and shows what would be put back; the sandbox is unchanged."""
    box = sandbox("--limit", "200", seed=seed_leads(tmp_path / "seed.json", 5))
    leads = close_file(tmp_path / "close.csv", 5)
    assert run_cli("update", str(leads), "--base-url", box.url, *FAST, cwd=tmp_path).code == 0
    before = box.state()
    applied = box.stats()["applied_total"]
    result = run_cli("undo", str(tmp_path / "close.report.csv"), "--dry-run", cwd=tmp_path)
    assert result.code == 0, result.stderr
    assert "city: 5 leads would change" in result.stderr
    assert box.state() == before and box.stats()["applied_total"] == applied
    with (tmp_path / "close.undo.dry-run.diff.csv").open(newline="") as f:
        diff = list(csv.DictReader(f))
    assert {"guid": GUIDS[0], "field": "city", "current": "New0", "new": "Old0"} in diff


def test_undo_dry_run_counts_leads_changed_since_apart(tmp_path: Path, sandbox) -> None:
    """A lead another client changed since the job is skipped by the undo, so its preview
    counts it as changed since, not as already holding the value to put back."""
    box = sandbox("--limit", "200", seed=seed_leads(tmp_path / "seed.json", 5))
    leads = close_file(tmp_path / "close.csv", 5)
    assert run_cli("update", str(leads), "--base-url", box.url, *FAST, cwd=tmp_path).code == 0
    httpx.put(
        f"{box.url}/leads/v1/lead/{GUIDS[1]}?access_token=sandbox-token",
        json={"guid": GUIDS[1], "city": "Edited"},
    ).raise_for_status()
    result = run_cli("undo", str(tmp_path / "close.report.csv"), "--dry-run", cwd=tmp_path)
    assert result.code == 0, result.stderr
    assert (
        "city: 4 leads would change, 0 already hold the new value, 1 changed since the job"
        in result.stderr
    )


def test_undo_of_a_job_without_backup_says_there_is_nothing_to_restore(
    tmp_path: Path, sandbox
) -> None:
    """--no-backup keeps no previous values: undo refuses with exit 2 and says why."""
    box = sandbox("--limit", "200", seed=seed_leads(tmp_path / "seed.json", 3))
    leads = close_file(tmp_path / "close.csv", 3)
    flags = ("--base-url", box.url, "--no-backup", *FAST)
    assert run_cli("update", str(leads), *flags, cwd=tmp_path).code == 0
    assert box.stats()["reads"] == 0
    result = run_cli("undo", str(tmp_path / "close.report.csv"), cwd=tmp_path)
    assert result.code == 2 and "--no-backup" in result.stderr


def test_nightly_close_writes_only_the_leads_that_change(tmp_path: Path, sandbox) -> None:
    """40 % already closed: every lead is read once, only the 60 % that change are written,
    the rest are skipped as already up to date."""
    count = 50
    box = sandbox("--limit", "200", seed=seed_leads(tmp_path / "seed.json", count))
    for guid in GUIDS[:20]:  # closed last night
        httpx.put(
            f"{box.url}/leads/v1/lead/{guid}?access_token=sandbox-token",
            json={"guid": guid, "closedAt": 1709251200000, "isCustomer": True},
        ).raise_for_status()
    leads = tmp_path / "nightly.csv"
    leads.write_text(
        "guid,closedAt,isCustomer\n" + "".join(f"{g},2024-03-01,yes\n" for g in GUIDS[:count])
    )
    before = box.stats()["applied_total"]
    result = run_cli("update", str(leads), "--base-url", box.url, *FAST, cwd=tmp_path)
    assert result.code == 0, result.stderr
    stats = box.stats()
    assert stats["applied_total"] - before == 30 and stats["reads"] == count
    rows = read_report(tmp_path / "nightly.report.csv")
    assert Counter(r["outcome"] for r in rows) == {"updated": 30, "skipped": 20}
    assert {r["note"] for r in rows if r["outcome"] == "skipped"} == {"already up to date"}


def test_equal_fields_are_left_out_of_the_body(tmp_path: Path, sandbox) -> None:
    """A lead whose city already matches gets only the fields that change."""
    box = sandbox("--limit", "200", seed=seed_leads(tmp_path / "seed.json", 1))
    leads = tmp_path / "one.csv"
    leads.write_text(f"guid,city,isCustomer\n{GUIDS[0]},Old0,yes\n")
    assert run_cli("update", str(leads), "--base-url", box.url, *FAST, cwd=tmp_path).code == 0
    (row,) = read_report(tmp_path / "one.report.csv")
    assert json.loads(row["changes"]) == {"isCustomer": [False, True]}


def test_only_empty_keeps_existing_values(tmp_path: Path, sandbox) -> None:
    """--only-empty city writes city only where it is empty; a kept value is noted."""
    box = sandbox("--limit", "200", seed=seed_leads(tmp_path / "seed.json", 4))
    for guid in GUIDS[:2]:
        httpx.put(
            f"{box.url}/leads/v1/lead/{guid}?access_token=sandbox-token",
            json={"guid": guid, "city": ""},
        ).raise_for_status()
    leads = close_file(tmp_path / "close.csv", 4)
    flags = ("--base-url", box.url, "--only-empty", "city", *FAST)
    assert run_cli("update", str(leads), *flags, cwd=tmp_path).code == 0
    state = box.state()
    assert [state[g]["city"] for g in GUIDS[:4]] == ["New0", "New1", "Old2", "Old3"]
    assert all(state[g]["isCustomer"] is True for g in GUIDS[:4])  # other fields still written
    rows = read_report(tmp_path / "close.report.csv")
    assert rows[2]["note"] == 'kept by --only-empty: city "Old2"'
    assert rows[2]["outcome"] == "updated"


def test_a_resumed_job_never_reads_a_lead_twice(tmp_path: Path, sandbox) -> None:
    """The daily cap stops the run while reading; the next run reads only the rest."""
    count = 20
    box = sandbox("--daily", "8", "--limit", "200", seed=seed_leads(tmp_path / "s.json", count))
    leads = close_file(tmp_path / "close.csv", count)
    args = ("update", str(leads), "--base-url", box.url, *FAST)
    first = run_cli(*args, cwd=tmp_path)
    assert first.code == 3, first.stderr
    assert box.stats()["reads"] == 8
    assert Counter(r["outcome"] for r in read_report(tmp_path / "close.report.csv")) == {
        "deferred": count
    }
    box.configure(daily=1000)
    second = run_cli(*args, cwd=tmp_path)
    assert second.code == 0, second.stderr
    stats = box.stats()
    assert stats["reads"] == count and stats["applied_total"] == count


def test_verify_catches_the_silent_no_op(tmp_path: Path, sandbox) -> None:
    """HubSpot answers 204 but keeps nothing: --verify reads back and fails those leads."""
    box = sandbox("--limit", "200", "--noop-rate", "0.5", seed=seed_leads(tmp_path / "s.json", 30))
    leads = close_file(tmp_path / "close.csv", 30)
    args = ("update", str(leads), "--base-url", box.url, "--verify", *FAST)
    result = run_cli(*args, cwd=tmp_path)
    noops = box.stats()["noops"]
    assert 0 < noops < 30  # a seeded coin would do too; both outcomes must appear
    assert result.code == 1, result.stderr
    rows = read_report(tmp_path / "close.report.csv")
    failed = [r for r in rows if r["outcome"] == "failed"]
    assert len(failed) == noops
    assert failed[0]["error"].startswith("HubSpot accepted the update but did not keep it")
    assert f"{30 - noops} leads verified" in result.stderr
    state = box.state()
    assert {r["guid"] for r in failed} == {
        g for i, g in enumerate(GUIDS[:30]) if state[g]["city"] != f"New{i}"
    }


def test_dry_run_with_a_token_shows_the_diff_and_without_stays_offline(
    tmp_path: Path, sandbox
) -> None:
    """Per field: how many change and how many already hold the value; a diff file beside
    the report; without a token nothing is read."""
    box = sandbox("--limit", "200", seed=seed_leads(tmp_path / "seed.json", 4))
    leads = tmp_path / "close.csv"
    leads.write_text(
        "guid,city\n"
        + "".join(f"{g},{'Old' if i < 1 else 'New'}{i}\n" for i, g in enumerate(GUIDS[:4]))
    )
    args = ("update", str(leads), "--base-url", box.url, "--dry-run")
    offline = run_cli(*args, cwd=tmp_path, token=None)
    assert offline.code == 0 and "stays offline" in offline.stderr
    assert box.stats()["reads"] == 0
    online = run_cli(*args, cwd=tmp_path)
    assert online.code == 0, online.stderr
    assert "city: 3 leads would change, 1 already hold the new value" in online.stderr
    assert box.stats()["reads"] == 4 and box.stats()["applied_total"] == 0
    with (tmp_path / "close.dry-run.diff.csv").open(newline="") as f:
        assert [r["new"] for r in csv.DictReader(f)] == ["New1", "New2", "New3"]
    outcomes = Counter(r["outcome"] for r in read_report(tmp_path / "close.dry-run.report.csv"))
    assert outcomes == {"planned": 3, "skipped": 1}


def test_a_dry_run_reads_a_random_sample_and_projects_from_it(tmp_path: Path, sandbox) -> None:
    """100 leads, every fourth already up to date: --sample 20 reads 20 drawn at random and
    projects from exactly those (its diff file lists the ones that change), saying so; the
    draw is seeded (the same twice); --sample all reads every lead and counts exactly."""
    box = sandbox("--limit", "200", seed=seed_leads(tmp_path / "seed.json", 100))
    leads = tmp_path / "close.csv"
    leads.write_text(
        "guid,city\n"
        + "".join(f"{g},{'Old' if i % 4 == 0 else 'New'}{i}\n" for i, g in enumerate(GUIDS))
    )
    args = ("update", str(leads), "--base-url", box.url, "--dry-run", "--log-format", "json")
    sampled = run_cli(*args, "--sample", "20", cwd=tmp_path)
    assert sampled.code == 0, sampled.stderr
    assert box.stats()["reads"] == 20
    events = {e["event"]: e for e in json_lines(sampled.stderr)}
    assert events["sample"]["read"] == 20 and events["sample"]["bundles"] == 100
    with (tmp_path / "close.dry-run.diff.csv").open(newline="") as f:
        changing = len(list(csv.DictReader(f)))
    field = events["diff_field"]
    assert field["projected"]
    assert (field["change"], field["already"]) == (changing * 5, (20 - changing) * 5)
    assert f"~{changing * 5} leads would change" in field["message"]
    again = run_cli(*args, "--sample", "20", cwd=tmp_path)
    twice = next(e for e in json_lines(again.stderr) if e["event"] == "diff_field")
    assert (twice["change"], twice["already"]) == (field["change"], field["already"])
    every = run_cli(*args, "--sample", "all", cwd=tmp_path)
    assert every.code == 0, every.stderr
    assert box.stats()["reads"] == 20 + 20 + 100
    field = next(e for e in json_lines(every.stderr) if e["event"] == "diff_field")
    assert not field["projected"] and (field["change"], field["already"]) == (75, 25)
    refused = run_cli(*args, "--sample", "0", cwd=tmp_path)
    assert refused.code == 2 and "--sample" in refused.stderr


# -- CRM v3 ------------------------------------------------------------------------------------


def test_crm_job_then_undo_restores_the_seed_reading_100_a_request(tmp_path: Path, sandbox) -> None:
    """243 contacts: 3 batch reads, the updates, and undo puts every property back."""
    box = sandbox(
        "--limit", "100", "--window", "10",
        "--crm-seed", f"contacts={SAMPLE / 'contacts_seed.json'}",
    )  # fmt: skip
    seed = httpx.get(f"{box.url}/__sandbox/objects/contacts").json()
    rows = "".join(f"{1001 + i},City{i},customer\n" for i in range(243))
    leads = tmp_path / "contacts.csv"
    leads.write_text("id,city,lifecyclestage\n" + rows)
    args = ("--api", "crm-v3", "--object", "contacts", "--base-url", box.url)
    result = run_cli("update", str(leads), *args, cwd=tmp_path)
    assert result.code == 0, result.stderr
    assert box.stats()["reads"] == 3
    # The property list read before planning is counted as the run's own: the pacer never
    # took it for another client (which would have slowed the whole run).
    (job_file,) = Path(os.environ["BULKLEADS_STATE_DIR"]).glob("*.job.sqlite")
    with JobStore(job_file) as store:
        timeline = list(store.requests.entries())
    assert len(timeline) == 6 and all(entry[6] == 0 for entry in timeline)
    undone = run_cli("undo", str(tmp_path / "contacts.report.csv"), cwd=tmp_path)
    assert undone.code == 0, undone.stderr
    assert httpx.get(f"{box.url}/__sandbox/objects/contacts").json() == seed


def test_only_empty_needs_reading(tmp_path: Path) -> None:
    """--only-empty with --no-backup cannot work: exit 2 before anything."""
    leads = close_file(tmp_path / "close.csv", 1)
    flags = ("--no-backup", "--only-empty", "city")
    result = run_cli("update", str(leads), "--dry-run", *flags, cwd=tmp_path, token=None)
    assert result.code == 2 and "--no-backup" in result.stderr


def test_undo_of_a_job_with_damaged_backups_restores_the_rest(tmp_path: Path, sandbox) -> None:
    """A backup cell that is not JSON, or JSON of the wrong shape: undo counts those leads
    as not restorable, says so, and puts the others back; no traceback."""
    box = sandbox("--limit", "200", seed=seed_leads(tmp_path / "seed.json", 4))
    leads = close_file(tmp_path / "close.csv", 4)
    assert run_cli("update", str(leads), "--base-url", box.url, *FAST, cwd=tmp_path).code == 0
    (job_file,) = Path(os.environ["BULKLEADS_STATE_DIR"]).glob("*.job.sqlite")
    db = sqlite3.connect(job_file)
    db.execute("UPDATE bundles SET before = '{not json' WHERE guid = ?", (GUIDS[0],))
    db.execute("UPDATE bundles SET before = '[1, 2]' WHERE guid = ?", (GUIDS[1],))
    db.commit()
    db.close()
    undone = run_cli("undo", str(tmp_path / "close.report.csv"), *FAST, cwd=tmp_path)
    assert undone.code == 0, undone.stderr
    assert "Traceback" not in undone.stderr
    assert "2 updated without a readable backup cannot be" in undone.stderr
    state = box.state()
    assert [state[g]["city"] for g in GUIDS[:4]] == ["New0", "New1", "Old2", "Old3"]


def test_retry_of_a_verified_job_verifies_and_sends_the_no_ops_again(
    tmp_path: Path, sandbox
) -> None:
    """Verifying is part of the job: `retry` (no flags) sends again the writes --verify found
    not kept and reads them back, so a no-op of the retry is failed, never updated; once the
    portal keeps the writes, the next retry finishes the job."""
    box = sandbox("--limit", "200", "--noop-rate", "0.5", seed=seed_leads(tmp_path / "s.json", 30))
    leads = close_file(tmp_path / "close.csv", 30)
    first = run_cli("update", str(leads), "--base-url", box.url, "--verify", *FAST, cwd=tmp_path)
    assert first.code == 1, first.stderr
    report = tmp_path / "close.report.csv"
    noops = box.stats()["noops"]
    again = run_cli("retry", str(report), *FAST, cwd=tmp_path)
    assert f"sending again 0 leads not sent and {noops} leads failed" in again.stderr
    assert "verified (read back as sent)" in again.stderr
    state = box.state()
    held = {g for i, g in enumerate(GUIDS[:30]) if state[g]["city"] == f"New{i}"}
    rows = read_report(report)
    assert {r["guid"] for r in rows if r["outcome"] == "updated"} == held
    box.configure(noop_rate=0.0)
    last = run_cli("retry", str(report), *FAST, cwd=tmp_path)
    assert last.code == 0, last.stderr
    state = box.state()
    assert [state[g]["city"] for g in GUIDS[:30]] == [f"New{i}" for i in range(30)]
    assert {r["outcome"] for r in read_report(report)} == {"updated"}


def test_a_sample_does_not_fall_in_step_with_a_patterned_file(tmp_path: Path, sandbox) -> None:
    """A generated file where every 15th lead already holds its value: a stride of 15 read
    only those (projecting nothing to change); the random draw reads both kinds and projects
    near the truth (280 of 300 change)."""
    count = 300
    guids = [f"{i:032x}" for i in range(1, count + 1)]
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps([{"guid": g, "city": f"Old{i}"} for i, g in enumerate(guids)]))
    box = sandbox("--limit", "500", seed=seed)
    leads = tmp_path / "gen.csv"
    leads.write_text(
        "guid,city\n"
        + "".join(f"{g},{'Old' if i % 15 == 0 else 'New'}{i}\n" for i, g in enumerate(guids))
    )
    args = ("update", str(leads), "--base-url", box.url, "--dry-run", "--log-format", "json")
    sampled = run_cli(*args, "--sample", "20", cwd=tmp_path)
    assert sampled.code == 0, sampled.stderr
    field = next(e for e in json_lines(sampled.stderr) if e["event"] == "diff_field")
    assert 200 <= field["change"] <= 300 and field["change"] + field["already"] == count
