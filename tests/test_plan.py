"""Planning: validation, bundling, conflicts, and the report built from the store."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulkleads.errors import InputError, UsageError
from bulkleads.input.text import InputFile
from bulkleads.jobstore.store import JobStore
from bulkleads.plan.options import PlanOptions
from bulkleads.plan.planner import plan
from bulkleads.report.rows import outcome_of, write_report


def run_plan(tmp_path: Path, text: str, name: str = "in.csv", **options: object):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    db = tmp_path / f"{name}.sqlite"
    db.unlink(missing_ok=True)
    store = JobStore(db)
    with InputFile(str(path)) as source:
        summary = plan(source, store, PlanOptions(**options))
    return summary, store


def bundles(store: JobStore) -> dict[str, dict[str, object]]:
    return {b.guid: b.body for b in store.to_send(("pending",), 0, 10_000)}


def test_rows_of_one_guid_become_one_bundle_with_every_change(tmp_path: Path) -> None:
    """All rows of a guid merge into one body; empty cells are never sent."""
    summary, store = run_plan(tmp_path, "guid,city,state,closedAt\na,Boston,,\nb,,NH,\na,,MA,0\n")
    assert bundles(store) == {
        "a": {"city": "Boston", "state": "MA", "closedAt": 0},
        "b": {"state": "NH"},
    }
    assert (summary.records, summary.bundles, summary.invalid) == (3, 2, 0)


def test_equal_but_differently_typed_values_stay_apart(tmp_path: Path) -> None:
    """Coerced cells are cached; 1, 1.0 and true are equal in Python but not on the wire."""
    lines = ['{"guid":"a","city":1}', '{"guid":"b","city":true}', '{"guid":"c","city":1.0}']
    _, store = run_plan(tmp_path, "\n".join(lines) + "\n", name="in.jsonl")
    sent = {g: json.dumps(body) for g, body in bundles(store).items()}
    assert sent == {"a": '{"city": 1}', "b": '{"city": true}', "c": '{"city": 1.0}'}


@pytest.mark.parametrize(
    ("policy", "city", "loser", "note"),
    [
        ("last", "Cambridge", 1, "city overridden by row 2"),
        ("first", "Boston", 2, "city ignored: row 1 set it first"),
    ],
)
def test_conflicts_follow_the_policy_and_note_the_loser(
    tmp_path: Path, policy: str, city: str, loser: int, note: str
) -> None:
    """last/first keep one value and say on the losing row which row won."""
    _, store = run_plan(tmp_path, "guid,city\na,Boston\na,Cambridge\n", on_conflict=policy)
    assert bundles(store)["a"] == {"city": city}
    assert [r.note for r in store.report_rows()][loser - 1] == note


def test_conflict_error_makes_the_guid_invalid(tmp_path: Path) -> None:
    """--on-conflict error: the lead is not sent and every row of it is invalid."""
    summary, store = run_plan(
        tmp_path, "guid,city\na,Boston\nb,X\na,Cambridge\n", on_conflict="error"
    )
    assert set(bundles(store)) == {"b"}
    rows = list(store.report_rows())
    assert [outcome_of(r, dry_run=True)[0] for r in rows] == ["invalid", "planned", "invalid"]
    assert (
        outcome_of(rows[0])[1]
        == outcome_of(rows[2])[1]
        == ("conflicting values: city in rows 1 and 3")
    )
    assert summary.invalid == 2


def test_clear_token_and_nothing_to_change(tmp_path: Path) -> None:
    """--clear-token clears (empty string / 0); a guid with no change is skipped."""
    _, store = run_plan(tmp_path, "guid,city,closedAt\na,NULL,NULL\nb,,\n", clear_token="NULL")
    assert bundles(store) == {"a": {"city": "", "closedAt": 0}}
    skipped = next(r for r in store.report_rows() if r.guid == "b")
    assert (skipped.state, skipped.reason) == ("skipped", "nothing to change")


def test_not_editable_column_stops_before_sending(tmp_path: Path) -> None:
    """A CSV column HubSpot will not accept is exit 2, naming it; --allow-field overrides."""
    with pytest.raises(InputError, match="column\\(s\\) score cannot be edited"):
        run_plan(tmp_path, "guid,score\na,1\n")
    _, store = run_plan(tmp_path, "guid,score\na,1\n", allow_fields=("score",))
    assert bundles(store) == {"a": {"score": "1"}}


def test_not_editable_field_in_jsonl_invalidates_only_its_row(tmp_path: Path) -> None:
    """In JSONL the check is per row: the others still go through."""
    _, store = run_plan(
        tmp_path, '{"guid":"a","portalId":1}\n{"guid":"b","city":null}\n', name="in.jsonl"
    )
    assert bundles(store) == {"b": {"city": ""}}
    assert next(store.report_rows()).error == "portalId cannot be edited through the API"


def test_columns_are_found_renamed_and_ignored(tmp_path: Path) -> None:
    """GUID matches case-insensitively; --map renames; --ignore-column drops; unknowns listed."""
    summary, store = run_plan(
        tmp_path,
        " GUID ,Close date,Notes,Colour\na,2024-03-01,x,red\n",
        renames=(("close date", "closedAt"),),
        ignore=("notes",),
        custom_fields=("Colour",),
    )
    assert bundles(store) == {"a": {"closedAt": 1709251200000, "Colour": "red"}}
    assert summary.custom_fields == ["Colour"]
    assert summary.ignored_columns == ["Notes"]
    with pytest.raises(UsageError, match="no guid column"):
        run_plan(tmp_path, "id,city\na,b\n")
    _, store = run_plan(tmp_path, "Lead ID,city\na,b\n", renames=(("Lead ID", "guid"),))
    assert bundles(store) == {"a": {"city": "b"}}


def test_report_is_spreadsheet_safe_and_complete(tmp_path: Path) -> None:
    """Formula-like cells get a leading apostrophe; every row has a line in order."""
    _, store = run_plan(tmp_path, "guid,city\n=cmd,x\n-a,+SUM(1)\n")
    report = tmp_path / "r.csv"
    counts = write_report(store, report, dry_run=True)
    with report.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["guid"] == "'=cmd" and rows[0]["outcome"] == "invalid"
    assert rows[1]["guid"] == "'-a" and rows[1]["fields"] == "city"
    assert counts == Counter({"invalid": 1, "planned": 1})
    jsonl = tmp_path / "r.jsonl"
    write_report(store, jsonl, dry_run=True)
    assert [json.loads(line)["row"] for line in jsonl.read_text().splitlines()] == [1, 2]


# -- properties ---------------------------------------------------------------------------------
GUID = st.sampled_from(["a", "b", "c", "d", "bad/guid", ""])
CELL = st.sampled_from(["", "", "x", "y", "z", " "])
ROW = st.tuples(GUID, CELL, CELL)


def _csv(rows: list[tuple[str, str, str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["guid", "city", "state"])
    writer.writerows(rows)
    return out.getvalue()


def _expected(rows: list[tuple[str, str, str]], policy: str) -> dict[str, dict[str, str]]:
    merged: dict[str, dict[str, str]] = {}
    for guid, city, state in rows:
        if not guid or guid == "bad/guid":
            continue
        target = merged.setdefault(guid, {})
        for name, value in (("city", city), ("state", state)):
            if value.strip() and (policy == "last" or name not in target):
                target[name] = value
    return {g: body for g, body in merged.items() if body}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(ROW, max_size=25), policy=st.sampled_from(["last", "first"]))
def test_every_row_once_and_bundles_are_the_policy_merge(tmp_path: Path, rows, policy) -> None:
    """Any file, any order: one report line per row in order, bundles = the defined merge,
    and no empty cell is ever sent."""
    summary, store = run_plan(tmp_path, _csv(rows), on_conflict=policy)
    assert [r.row for r in store.report_rows()] == list(range(1, len(rows) + 1))
    sent = bundles(store)
    assert sent == _expected(rows, policy)
    assert all(v.strip() for body in sent.values() for v in body.values())
    assert summary.bundles == len(sent)
    store.close()
