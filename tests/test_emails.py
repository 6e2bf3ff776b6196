"""Email values HubSpot refuses (INVALID_EMAIL) are invalid rows, never sent: written to the
email property, or used to match (and create) a contact. The sandbox refuses them as HubSpot
does, so a check that slipped would show as a refused write."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import httpx
import pytest

from bulkleads.fields import FieldError, coerce, email_error
from bulkleads.hubspot.crm_fields import crm_v3_rules
from bulkleads.sandbox import SANDBOX_TOKEN
from tests.conftest import read_report, run_cli

REFUSED = ["not-an-email", "bob@@example.com", "carol at example.com", "a@b", "a..b@example.com"]
TAKEN = ["ann@example.com", "o'brien+q4@sub.example.co.uk", "José@exämple.com", "X@Example.COM"]


@pytest.mark.parametrize("value", REFUSED)
def test_what_hubspot_refuses_is_named_with_the_reason(value: str) -> None:
    problem = email_error("email", value)
    assert problem is not None and problem.startswith("email: ")
    with pytest.raises(FieldError, match="is not an email address HubSpot accepts"):
        coerce("email", value)  # Leads v1
    with pytest.raises(FieldError, match="not an email address"):
        crm_v3_rules(frozenset(), None).coerce("email", value, None)  # CRM without definitions
    assert "not an email address" in (crm_v3_rules(frozenset(), "email").key_error(value) or "")


@pytest.mark.parametrize("value", TAKEN)
def test_plus_addressing_apostrophes_and_international_addresses_pass(value: str) -> None:
    assert email_error("email", value) is None
    assert coerce("email", value) == value
    assert crm_v3_rules(frozenset(), "email").key_error(value) is None


def test_only_email_properties_are_checked() -> None:
    """A city called 'not-an-email' is a city; a cleared email is a clear, not an address."""
    assert coerce("city", "not-an-email") == "not-an-email"
    assert crm_v3_rules(frozenset(), "firstname").key_error("not-an-email") is None
    assert coerce("email", "") == ""


def test_bad_emails_are_invalid_rows_and_never_reach_the_portal(tmp_path: Path, sandbox) -> None:
    """The three addresses the issue saw created, matched with --create, and one written to an
    existing contact: four invalid rows, one request's worth of good work, and nothing in the
    portal holds a bad address."""
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps([{"id": "1", "email": "old@example.com", "city": ""}]))
    box = sandbox("--limit", "100", "--crm-seed", f"contacts={seed}")
    created = tmp_path / "new.csv"
    created.write_text(
        "email,city\nnot-an-email,A\nbob@@example.com,B\ncarol at example.com,C\n"
        "dora@example.com,D\n"
    )
    crm = ("--api", "crm-v3", "--object", "contacts", "--base-url", box.url)
    ran = run_cli("update", str(created), *crm, "--match", "email", "--create", cwd=tmp_path)
    assert ran.code == 1, ran.stderr  # invalid rows: exit 1, the good one done
    rows = read_report(tmp_path / "new.report.csv")
    assert Counter(r["outcome"] for r in rows) == {"invalid": 3, "created": 1}
    assert all("not an email address" in r["error"] for r in rows if r["outcome"] == "invalid")

    moved = tmp_path / "moved.csv"
    moved.write_text("id,email\n1,old at example.com\n")
    refused = run_cli("update", str(moved), *crm, cwd=tmp_path)
    assert refused.code == 1, refused.stderr
    assert [r["outcome"] for r in read_report(tmp_path / "moved.report.csv")] == ["invalid"]

    emails = {r.get("email") for r in box.state_of("contacts").values()}
    assert emails == {"old@example.com", "dora@example.com"}
    assert box.stats()["requests"].get("400", 0) == 0  # nothing was refused: nothing bad sent


def test_the_sandbox_refuses_a_bad_email_as_hubspot_does(sandbox) -> None:
    """Create, upsert and update all answer 400 VALIDATION_ERROR with INVALID_EMAIL, and
    apply nothing: the sandbox would catch a bad address the tool let through."""
    box = sandbox("--limit", "100")
    headers = {"Authorization": f"Bearer {SANDBOX_TOKEN}"}
    root = f"{box.url}/crm/objects/2026-09/contacts/batch"
    bodies = {
        "create": {"inputs": [{"properties": {"email": "bob@@example.com"}}]},
        "upsert": {
            "inputs": [{"id": "carol at example.com", "idProperty": "email", "properties": {}}]
        },
    }
    for kind, body in bodies.items():
        answer = httpx.post(f"{root}/{kind}", json=body, headers=headers)
        assert answer.status_code == 400, (kind, answer.text)
        assert "INVALID_EMAIL" in answer.json()["message"], kind
    assert box.stats()["crm_created"] == 0
