"""CRM v3 against the portal's own property definitions: names, read-only, options, types."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC
from pathlib import Path

import httpx
import pytest
import respx

from bulkleads.fields import FieldError
from bulkleads.hubspot.properties import parse
from bulkleads.hubspot.reads import get
from bulkleads.sandbox.crm import schema_errors
from bulkleads.sandbox.properties import default_definitions, load_definitions
from bulkleads.token import Token
from tests.conftest import SAMPLE, read_report, run_cli

CRM = ("--api", "crm-v3", "--object", "contacts")


def portal(**extra: dict) -> object:
    definitions = {**default_definitions("contacts"), **extra}
    return parse("contacts", {"results": list(definitions.values())})


def test_the_sandbox_serves_definitions_valid_against_hubspots_spec(tmp_path: Path) -> None:
    """Defaults and seeded definitions both match CollectionResponsePropertyNoPaging."""
    seeded = tmp_path / "props.json"
    seeded.write_text(json.dumps([{"name": "tier", "type": "enumeration", "options": []}]))
    for definitions in (default_definitions("deals"), load_definitions("contacts", seeded)):
        answer = {"results": list(definitions.values())}
        assert schema_errors("properties", "CollectionResponsePropertyNoPaging", answer) == []


def test_values_are_checked_and_converted_by_type() -> None:
    """Enumerations by value or label, booleans, numbers, dates at midnight, datetimes."""
    contacts = portal()
    rules = contacts.rules(None, frozenset())
    assert rules.coerce("lifecyclestage", "customer", UTC) == "customer"
    assert rules.coerce("lifecyclestage", "Sales Qualified Lead", UTC) == "salesqualifiedlead"
    assert contacts.labels == {"lifecyclestage": {("Sales Qualified Lead", "salesqualifiedlead")}}
    with pytest.raises(FieldError, match="'VIP' is not one of its options"):
        rules.coerce("lifecyclestage", "VIP", UTC)
    assert rules.coerce("hs_email_optout", "Yes", UTC) == "true"
    with pytest.raises(FieldError, match="not a boolean"):
        rules.coerce("hs_email_optout", "maybe", UTC)
    assert rules.coerce("annualrevenue", " 1200.50 ", UTC) == "1200.50"
    with pytest.raises(FieldError, match="not a number"):
        rules.coerce("annualrevenue", "12k", UTC)
    assert rules.coerce("date_of_birth", "1990-05-17", UTC) == "642902400000"
    with pytest.raises(FieldError, match="is a date property"):
        rules.coerce("date_of_birth", "1990-05-17T10:00:00Z", UTC)
    assert rules.coerce("closedate", "2024-03-01T09:30:00Z", UTC) == "1709285400000"
    assert {"num_associated_deals", "createdate"} <= rules.not_editable


def test_checkbox_enumerations_take_several_options() -> None:
    """A multi-select takes ;-separated options, each by value or label."""
    tags = {
        "name": "tags",
        "type": "enumeration",
        "fieldType": "checkbox",
        "options": [
            {"label": "Gold", "value": "gold", "hidden": False},
            {"label": "Beta tester", "value": "beta", "hidden": False},
        ],
    }
    rules = portal(tags=tags).rules(None, frozenset())
    assert rules.coerce("tags", "gold;Beta tester", UTC) == "gold;beta"


@pytest.fixture
def crm_box(sandbox, tmp_path: Path):
    props = tmp_path / "props.json"
    props.write_text(json.dumps([{"name": "favorite_color", "type": "string"}]))
    return sandbox(
        "--limit", "100", "--window", "10",
        "--crm-seed", f"contacts={SAMPLE / 'contacts_seed.json'}",
        "--crm-properties", f"contacts={props}",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("header", "row", "message"),
    [
        ("id,life_cycle_stage", "1001,lead", "'life_cycle_stage' (did you mean lifecyclestage?)"),
        ("id,num_associated_deals", "1001,3", "num_associated_deals cannot be edited"),
        ("id,shoe_size", "1001,44", "not a property of the portal's contact records"),
    ],
)
def test_unknown_and_read_only_properties_stop_before_any_write(
    tmp_path: Path, crm_box, header: str, row: str, message: str
) -> None:
    """Against the portal's list: a typo, a calculated property and a property the portal
    lacks (even named with --custom-field) are exit 2, nothing written."""
    leads = tmp_path / "c.csv"
    leads.write_text(f"{header}\n{row}\n")
    args = ("update", str(leads), *CRM, "--base-url", crm_box.url, "--custom-field", "shoe_size")
    result = run_cli(*args, cwd=tmp_path)
    assert result.code == 2, result.stderr
    assert message in result.stderr
    assert crm_box.stats()["crm_applied_total"] == 0


def test_bad_options_are_invalid_rows_and_labels_go_as_values(tmp_path: Path, crm_box) -> None:
    """An option that is neither value nor label is an invalid row; a label is sent as its
    value and the plan says so; the portal's custom property is accepted."""
    leads = tmp_path / "c.csv"
    leads.write_text(
        "id,lifecyclestage,favorite_color\n1001,Customer,teal\n1002,VIP,red\n1003,lead,\n"
    )
    result = run_cli("update", str(leads), *CRM, "--base-url", crm_box.url, cwd=tmp_path)
    assert result.code == 1, result.stderr
    assert "lifecyclestage: option labels sent as their values: 'Customer' as 'customer'" in (
        result.stderr
    )
    rows = read_report(tmp_path / "c.report.csv")
    assert [r["outcome"] for r in rows] == ["updated", "invalid", "skipped"]  # 1003 is a lead
    assert "'VIP' is not one of its options" in rows[1]["error"]
    records = httpx.get(f"{crm_box.url}/__sandbox/objects/contacts").json()
    assert records["1001"]["lifecyclestage"] == "customer"
    assert records["1001"]["favorite_color"] == "teal"


def test_without_a_token_a_dry_run_checks_against_hubspots_defaults(tmp_path: Path) -> None:
    """Offline, the same rule applies against HubSpot's default properties."""
    leads = tmp_path / "c.csv"
    leads.write_text("id,life_cycle_stage\n1001,lead\n")
    result = run_cli("update", str(leads), *CRM, "--dry-run", cwd=tmp_path, token=None)
    assert result.code == 2 and "did you mean lifecyclestage?" in result.stderr


def test_the_sample_contacts_stop_on_the_property_the_portal_lacks(tmp_path: Path, sandbox) -> None:
    """The sample's favorite_color is not a property of the sandbox's contacts: nothing is
    sent; without the column the job runs, 100 records a request, and a rerun sends nothing
    (not even the property read: the definitions read a minute ago are remembered)."""
    box = sandbox(
        "--limit", "100", "--window", "10",
        "--crm-seed", f"contacts={SAMPLE / 'contacts_seed.json'}",
    )  # fmt: skip
    leads = tmp_path / "contacts.csv"
    leads.write_text((SAMPLE / "contacts.csv").read_text())
    args = ("update", str(leads), *CRM, "--base-url", box.url)
    refused = run_cli(*args, cwd=tmp_path)
    assert refused.code == 2 and "favorite_color" in refused.stderr
    assert box.stats()["crm_applied_total"] == 0
    args += ("--ignore-column", "favorite_color")
    ran = run_cli(*args, cwd=tmp_path)
    assert ran.code == 1, ran.stderr  # one id the portal does not have, one invalid id
    outcomes = Counter(r["outcome"] for r in read_report(tmp_path / "contacts.report.csv"))
    assert outcomes == {"updated": 242, "not_found": 1, "invalid": 1}
    stats = box.stats()
    assert stats["reads"] == 3 and stats["crm_applied_total"] == 240  # 1002, 1100: two rows each
    requests = sum(stats["requests"].values())
    assert run_cli(*args, cwd=tmp_path).code == 1
    assert sum(box.stats()["requests"].values()) == requests


def test_columns_of_another_object_name_the_object_to_use(tmp_path: Path, sandbox) -> None:
    """A deals file run as contacts: the refusal names --object deals."""
    box = sandbox(seed=None)
    deals = tmp_path / "deals.csv"
    deals.write_text("id,dealname,amount\n101,Big,5000\n")
    result = run_cli("update", str(deals), *CRM, "--base-url", box.url, cwd=tmp_path)
    assert result.code == 2
    assert "they are properties of deals: pass --object deals" in result.stderr


def test_a_passing_failure_of_the_definitions_read_stops_before_any_write(
    tmp_path: Path, crm_box
) -> None:
    """A 5xx on every read of the definitions is no missing scope: the run is not planned on
    HubSpot's defaults (the label `Customer` sent as written, `VIP` let through) but stops
    before any write, exit 3; the same command, once HubSpot answers, converts the label and
    refuses the bad option."""
    leads = tmp_path / "c.csv"
    leads.write_text("id,lifecyclestage\n1001,Customer\n1002,VIP\n")
    args = ("update", str(leads), *CRM, "--base-url", crm_box.url, "--max-retry-time", "1")
    crm_box.configure(fail_rate=1.0)
    stopped = run_cli(*args, cwd=tmp_path)
    assert stopped.code == 3, stopped.stderr
    assert "could not read the portal's contacts property definitions" in stopped.stderr
    assert "defaults instead" not in stopped.stderr
    assert crm_box.stats()["crm_applied_total"] == 0
    assert not (tmp_path / "c.report.csv").exists()
    crm_box.configure(fail_rate=0.0)
    again = run_cli(*args, cwd=tmp_path)
    assert again.code == 1, again.stderr
    rows = read_report(tmp_path / "c.report.csv")
    assert [r["outcome"] for r in rows] == ["updated", "invalid"]
    assert (
        httpx.get(f"{crm_box.url}/__sandbox/objects/contacts").json()["1001"]["lifecyclestage"]
        == "customer"
    )


def test_a_job_planned_on_defaults_is_checked_again_when_it_resumes(
    tmp_path: Path, crm_box
) -> None:
    """Planned while the token lacked the schema scope (403: HubSpot's defaults, the label
    `Customer` kept as written) and deferred by the daily limit before its first write: once
    the definitions can be read, the resumed job sends `customer`, and the option the portal
    lacks is an invalid row, counted so by the plan and the report."""
    leads = tmp_path / "c.csv"
    leads.write_text("id,lifecyclestage\n1001,Customer\n1002,VIP\n")
    args = ("update", str(leads), *CRM, "--base-url", crm_box.url, "--no-backup")
    crm_box.configure(definitions_forbidden=True, daily=1)  # the read, then nothing
    deferred = run_cli(*args, cwd=tmp_path)
    assert deferred.code == 3, deferred.stderr
    assert "defaults instead" in deferred.stderr
    crm_box.configure(definitions_forbidden=False, daily=None)
    resumed = run_cli(*args, cwd=tmp_path)
    assert resumed.code == 1, resumed.stderr
    assert "resuming job" in resumed.stderr and "1 row not sent yet is invalid" in resumed.stderr
    rows = read_report(tmp_path / "c.report.csv")
    assert [r["outcome"] for r in rows] == ["updated", "invalid"]
    records = httpx.get(f"{crm_box.url}/__sandbox/objects/contacts").json()
    assert records["1001"]["lifecyclestage"] == "customer"
    assert crm_box.stats()["requests"].get("400") is None  # nothing refused: nothing guessed


def test_a_retry_of_a_job_planned_on_defaults_checks_it_against_the_definitions(
    tmp_path: Path, crm_box
) -> None:
    """Planned without the schema scope, its writes lost to 5xx: `retry` (no flags) reads the
    definitions it can now read, sends the label as its value and never sends the option the
    portal lacks (an invalid row)."""
    leads = tmp_path / "c.csv"
    leads.write_text("id,lifecyclestage\n1001,Customer\n1002,VIP\n")
    crm_box.configure(definitions_forbidden=True, fail_rate=1.0, fail_definitions=False)
    args = ("update", str(leads), *CRM, "--base-url", crm_box.url, "--no-backup")
    failed = run_cli(*args, "--max-attempts", "1", cwd=tmp_path)
    assert failed.code == 1, failed.stderr
    crm_box.configure(definitions_forbidden=False, fail_rate=0.0)
    retried = run_cli("retry", str(tmp_path / "c.report.csv"), cwd=tmp_path)
    assert retried.code == 1, retried.stderr
    assert "1 row not sent yet is invalid against the portal's definitions" in retried.stderr
    rows = read_report(tmp_path / "c.report.csv")
    assert [r["outcome"] for r in rows] == ["updated", "invalid"]
    assert "'VIP' is not one of its options" in rows[1]["error"]
    records = httpx.get(f"{crm_box.url}/__sandbox/objects/contacts").json()
    assert records["1001"]["lifecyclestage"] == "customer"
    assert crm_box.stats()["requests"].get("400") is None


def test_the_definitions_are_read_once_a_day_and_again_after_a_refusal(
    tmp_path: Path, crm_box
) -> None:
    """A dry run reads the portal's definitions; the run after it takes them from the portal's
    memory (no read, one request less). A value the portal then refuses (an option removed
    since) makes the run read them again at once: the refused row is invalid, not failed; the
    next run checks against the fresh list and refuses the value before sending."""
    leads = tmp_path / "c.csv"
    leads.write_text("id,lifecyclestage\n1001,customer\n1002,lead\n")
    args = ("update", str(leads), *CRM, "--base-url", crm_box.url)
    assert run_cli(*args, "--dry-run", cwd=tmp_path).code == 0
    assert crm_box.stats()["definition_reads"] == 1
    ran = run_cli(*args, cwd=tmp_path)
    assert ran.code == 0, ran.stderr
    assert "as read 0 min ago" in ran.stderr
    assert crm_box.stats()["definition_reads"] == 1
    crm_box.configure(remove_options={"contacts": {"lifecyclestage": ["customer"]}})
    leads.write_text("id,lifecyclestage\n1003,customer\n")
    refused = run_cli(*args, cwd=tmp_path)
    assert refused.code == 1, refused.stderr  # the portal's 400: the remembered list was old
    assert crm_box.stats()["definition_reads"] == 2  # read again at once
    (row,) = read_report(tmp_path / "c.report.csv")
    assert row["outcome"] == "invalid" and "'customer' is not one of its options" in row["error"]
    four_hundreds = crm_box.stats()["requests"]["400"]
    leads.write_text("id,lifecyclestage\n1004,customer\n")
    checked = run_cli(*args, cwd=tmp_path)
    assert checked.code == 1
    assert crm_box.stats()["definition_reads"] == 2  # the fresh list, remembered
    assert crm_box.stats()["requests"]["400"] == four_hundreds  # refused before sending


def test_a_locked_definitions_read_waits_two_seconds_then_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 423 on the definitions read is sent again after at least the 2 s HubSpot asks (a 5xx
    backs off from half a second): the plan still reads the portal's own definitions."""
    slept: list[float] = []
    monkeypatch.setattr("time.sleep", slept.append)
    url = "https://api.example.test/crm/v3/properties/contacts"
    answers = iter([httpx.Response(423), httpx.Response(503)])
    with respx.mock(assert_all_called=True) as mock:
        mock.get(url).mock(
            side_effect=lambda request: next(answers, httpx.Response(200, json={"results": []}))
        )
        status, body = get(url, Token("pat-na1-secret"), timeout=5, patience=60)
    assert (status, json.loads(body)) == (200, {"results": []})
    assert len(slept) == 2
    assert slept[0] >= 2.0
    assert slept[1] < 2.0
