"""Lifecycle stages only move forward at HubSpot: a set to an earlier stage answers 200 and
changes nothing unless the stage is cleared first. bulkleads knows the portal's order, sends a
move back as clear-then-set (both steps kept in the job), says so in the dry run, the done line
and the report; the sandbox behaves as HubSpot does."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx

from bulkleads.hubspot.crm_fields import LIFECYCLE_ORDER, stage_mover
from bulkleads.hubspot.properties import parse
from bulkleads.jobstore.store import JobStore
from bulkleads.sandbox import SANDBOX_TOKEN
from tests.conftest import json_lines, read_report, run_cli

AUTH = {"Authorization": f"Bearer {SANDBOX_TOKEN}"}


def test_a_move_back_is_an_earlier_stage_of_the_order() -> None:
    back = stage_mover(LIFECYCLE_ORDER)
    assert back("lifecyclestage", "customer", "lead")
    assert not back("lifecyclestage", "lead", "customer")
    assert not back("lifecyclestage", "lead", "lead")
    assert not back("lifecyclestage", "customer", "")  # a clear is no move
    assert not back("lifecyclestage", "", "lead")  # nothing to move from
    assert not back("lifecyclestage", "customer", "newstage")  # not in the order
    assert not back("hs_lead_status", "OPEN", "NEW")


def test_the_portals_order_is_its_display_order() -> None:
    """A portal that put its own stage first: its order, not the answer's."""
    options = [
        {"label": "Lead", "value": "lead", "displayOrder": 1},
        {"label": "Customer", "value": "customer", "displayOrder": 2},
        {"label": "Partner", "value": "partner", "displayOrder": 0},
    ]
    portal = parse(
        "contacts",
        {"results": [{"name": "lifecyclestage", "type": "enumeration", "options": options}]},
    )
    assert portal.stages() == ("partner", "lead", "customer")
    back = portal.rules(None, frozenset()).moves_back
    assert back("lifecyclestage", "lead", "partner") and not back(
        "lifecyclestage", "partner", "lead"
    )


def seed(path: Path, count: int, stage: str = "lead") -> Path:
    records = [
        {"id": str(1001 + i), "properties": {"email": f"u{i}@example.com", "lifecyclestage": stage}}
        for i in range(count)
    ]
    path.write_text(json.dumps(records))
    return path


def stages(box) -> list[str]:
    return [r["lifecyclestage"] for r in box.state_of("contacts").values()]


def test_the_sandbox_ignores_a_move_back_unless_cleared_first(tmp_path: Path, sandbox) -> None:
    box = sandbox("--crm-seed", f"contacts={seed(tmp_path / 's.json', 1, 'customer')}")
    url = f"{box.url}/crm/objects/2026-09/contacts/batch/update"

    def write(stage: str) -> int:
        body = {"inputs": [{"id": "1001", "properties": {"lifecyclestage": stage}}]}
        return httpx.post(url, json=body, headers=AUTH).status_code

    assert write("lead") == 200 and stages(box) == ["customer"]
    assert write("evangelist") == 200 and stages(box) == ["evangelist"]
    assert write("") == 200 and write("lead") == 200 and stages(box) == ["lead"]


def test_100_contacts_to_customer_and_back_by_undo(tmp_path: Path, sandbox) -> None:
    """Forward in one write each; the undo moves every one back to lead by clear-then-set:
    its requests show the clearing before the updating, the done line and the report say
    it, the dry run of the same move said it first."""
    box = sandbox(
        "--limit",
        "100",
        "--window",
        "10",
        "--crm-seed",
        f"contacts={seed(tmp_path / 's.json', 100)}",
    )
    rows = "".join(f"{1001 + i},customer\n" for i in range(100))
    (tmp_path / "up.csv").write_text("id,lifecyclestage\n" + rows)
    args = (
        "--api",
        "crm-v3",
        "--object",
        "contacts",
        "--base-url",
        box.url,
        "--log-format",
        "json",
    )
    forward = run_cli("update", str(tmp_path / "up.csv"), *args, cwd=tmp_path)
    assert forward.code == 0, forward.stderr
    assert set(stages(box)) == {"customer"}
    assert "moved_back" not in {e["event"] for e in json_lines(forward.stderr)}

    back_rows = "".join(f"{1001 + i},lead\n" for i in range(100))
    (tmp_path / "back.csv").write_text("id,lifecyclestage\n" + back_rows)
    dry = run_cli(
        "update", str(tmp_path / "back.csv"), *args, "--dry-run", "--sample", "all", cwd=tmp_path
    )
    assert dry.code == 0, dry.stderr
    said = next(e for e in json_lines(dry.stderr) if e["event"] == "moves_back")
    assert said["count"] == 100 and "clear, then the stage" in said["message"]
    assert set(stages(box)) == {"customer"}  # a dry run writes nothing

    before = set(Path(os.environ["BULKLEADS_STATE_DIR"]).glob("*.job.sqlite"))
    undone = run_cli("undo", str(tmp_path / "up.report.csv"), "--log-format", "json", cwd=tmp_path)
    assert undone.code == 0, undone.stderr
    assert stages(box) == ["lead"] * 100
    moved = next(e for e in json_lines(undone.stderr) if e["event"] == "moved_back")
    assert moved["count"] == 100
    (job_file,) = set(Path(os.environ["BULKLEADS_STATE_DIR"]).glob("*.job.sqlite")) - before
    with JobStore(job_file) as store:
        phases = [entry[4] for entry in store.requests.entries() if entry[3] == 200]
    assert phases == ["reading", "clearing", "updating"]  # one batch of 100 each
    notes = {row["note"] for row in read_report(tmp_path / "up.undo.report.csv")}
    assert notes == {"moves back (lifecyclestage customer to lead): cleared first, then set"}


def test_a_clear_confirmed_lets_the_write_go_and_one_refused_fails_the_record(
    tmp_path: Path,
) -> None:
    """What a clearing batch's answers do: ok, the record's write may go; an answer that
    does not confirm it (unconfirmed) fails the record with no answer counted, so that a
    plain retry clears it again."""
    from bulkleads.bundle import RESUMABLE, Mark, Read, State
    from bulkleads.hubspot.http import Outcome
    from bulkleads.send.phases import ClearPhase

    with JobStore(tmp_path / "job.sqlite") as store:
        store.add_rows(
            [(i, i + 1, g, "{}", "lifecyclestage", None) for i, g in enumerate(("1", "2"), 1)]
        )
        store.add_bundles(
            [
                (g, '{"lifecyclestage":"lead"}', i, State.PENDING, None)
                for i, g in enumerate(("1", "2"), 1)
            ]
        )
        store.record_reads(
            [
                Read(
                    '{"lifecyclestage":"customer"}',
                    '{"lifecyclestage":"lead"}',
                    State.PENDING,
                    None,
                    None,
                    None,
                    g,
                )
                for g in ("1", "2")
            ]
        )
        store.clear_first([(["lifecyclestage"], g) for g in ("1", "2")])
        phase = ClearPhase(store, None, RESUMABLE)  # type: ignore[arg-type]
        one, two = phase.take(0, 10)
        phase.record(
            [
                (one, Outcome("ok", 200), Mark(State.DONE, 200, 1, None, "1")),
                (
                    two,
                    Outcome("unconfirmed", 200, "not named"),
                    Mark(State.UNCONFIRMED, 200, 1, "not named", "2"),
                ),
            ]
        )
        assert phase.pending() == 0
        assert store.bundle_states() == {"pending": 1, "failed": 1}
        reasons = {r.guid: r.reason for r in store.report_rows()}
        assert reasons["2"] == "clearing lifecyclestage first (a move back): not named"
        assert [b.guid for b in store.to_send(RESUMABLE, 0, 10, read=True, action="update")] == [
            "1"
        ]
        assert store.requeue() == {"not_sent": 0, "transient": 1, "final": 0}  # cleared again
