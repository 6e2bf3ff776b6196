"""The sandbox's Imports API against ``shared/reference/hubspot-api.md``: UPDATE, CREATE and
UPSERT by record id or a unique property, asynchronous with per-row errors, and its limits
(1,048,576 rows or 512 MB a file, 80,000,000 rows a day, three imports at once). HubSpot's own
client starts an import and reads its state and errors."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from bulkleads.sandbox import SANDBOX_TOKEN
from bulkleads.sandbox.crm import CrmObjects
from bulkleads.sandbox.imports import AT_ONCE, MAX_BYTES, MAX_ROWS, ROWS_A_DAY, Imports

CONTACTS = "0-1"


def _request(operation: str, key: str = "HUBSPOT_ALTERNATE_ID") -> dict[str, object]:
    """An import of contacts: the email column the key (a unique property), then the city."""
    mappings = [
        {"columnObjectTypeId": CONTACTS, "columnName": "Email", "propertyName": "email",
         "columnType": key},
        {"columnObjectTypeId": CONTACTS, "columnName": "City", "propertyName": "city"},
    ]  # fmt: skip
    return {
        "name": "nightly",
        "importOperations": {CONTACTS: operation},
        "files": [
            {
                "fileName": "c.csv",
                "fileFormat": "CSV",
                "fileImportPage": {"hasHeader": True, "columnMappings": mappings},
            }
        ],
    }


def test_hubspots_client_starts_an_upsert_and_reads_its_state_and_errors(
    tmp_path: Path, sandbox
) -> None:
    """An UPSERT by email updates one contact and creates one; a row with a value the property
    refuses is an error naming its line, the other rows go in."""
    from hubspot import HubSpot

    seed = tmp_path / "contacts.json"
    seed.write_text(json.dumps([{"id": "1", "properties": {"email": "a@x.io", "city": "Oslo"}}]))
    box = sandbox("--crm-seed", f"contacts={seed}", seed=None)
    csv_file = tmp_path / "c.csv"
    csv_file.write_text("Email,City\na@x.io,Bergen\nb@x.io,Rome\nnot-an-email,Paris\n")
    client = HubSpot(access_token=SANDBOX_TOKEN, host=box.url)
    started = client.crm.imports.core_api.create(
        files=str(csv_file), import_request=json.dumps(_request("UPSERT"))
    )
    assert started.state == "STARTED"
    done = client.crm.imports.core_api.get_by_id(started.id)
    assert done.state == "DONE"
    assert done.metadata.counters == {
        "TOTAL_ROWS": 3,
        "CREATED_OBJECTS": 1,
        "UPDATED_OBJECTS": 1,
        "ERRORS": 1,
    }
    (error,) = client.crm.imports.public_imports_api.get_errors(started.id).results
    assert (error.error_type, error.source_data.line_number) == ("FAILED_VALIDATION", 4)
    assert error.source_data.row_data == ["not-an-email", "Paris"]
    held = box.state_of("contacts")
    assert {r["email"]: r["city"] for r in held.values()} == {"a@x.io": "Bergen", "b@x.io": "Rome"}


def test_update_by_record_id_names_the_ids_it_cannot_find(tmp_path: Path, sandbox) -> None:
    seed = tmp_path / "contacts.json"
    seed.write_text(json.dumps([{"id": "7", "properties": {"email": "a@x.io"}}]))
    box = sandbox("--crm-seed", f"contacts={seed}", seed=None)
    request = _request("UPDATE", key="HUBSPOT_OBJECT_ID")
    started = httpx.post(
        f"{box.url}/crm/imports/2026-09",
        headers={"Authorization": f"Bearer {SANDBOX_TOKEN}"},
        files={"files": ("c.csv", b"Record ID,City\n7,Oslo\n8,Rome\n", "text/csv")},
        data={"importRequest": json.dumps(request)},
    ).json()
    errors = httpx.get(
        f"{box.url}/crm/imports/2026-09/{started['id']}/errors",
        headers={"Authorization": f"Bearer {SANDBOX_TOKEN}"},
    ).json()["results"]
    assert [(e["errorType"], e["invalidValue"]) for e in errors] == [("INVALID_OBJECT_ID", "8")]
    assert box.state_of("contacts")["7"]["city"] == "Oslo" and "8" not in box.state_of("contacts")


def _imports(held: bool = False) -> Imports:
    imports = Imports(CrmObjects({"contacts": {}}))
    imports.hold = held
    return imports


def test_a_file_takes_1048576_rows_and_512_mb() -> None:
    header = [["Email", "City"]]
    just_so = [*header, *[["x@y.io", "Oslo"]] * MAX_ROWS]
    assert _imports(held=True).start(_request("CREATE"), 100, just_so)[0] == 200
    too_many = [*just_so, ["x@y.io", "Oslo"]]
    status, said = _imports().start(_request("CREATE"), 100, too_many)
    assert status == 400 and "1,048,576 rows" in said["message"]
    assert _imports().start(_request("CREATE"), MAX_BYTES, header)[0] == 200
    status, said = _imports().start(_request("CREATE"), MAX_BYTES + 1, header)
    assert status == 400 and "512 MB" in said["message"]
    assert MAX_BYTES == 512 * 1024 * 1024  # the reference's 512 MB, in bytes


def test_a_portal_imports_80_million_rows_a_day() -> None:
    imports = _imports()
    imports.rows_today = ROWS_A_DAY - 1
    rows = [["Email", "City"], ["a@x.io", "Oslo"], ["b@x.io", "Rome"]]
    status, said = imports.start(_request("CREATE"), 100, rows)
    assert status == 400 and "80,000,000 rows a day" in said["message"]
    assert imports.start(_request("CREATE"), 100, rows[:2])[0] == 200


@pytest.mark.parametrize("operation", ["UPDATE", "CREATE", "UPSERT"])
def test_three_imports_run_at_once_and_a_fourth_waits(operation: str) -> None:
    imports = _imports(held=True)
    rows = [["Email", "City"], ["a@x.io", "Oslo"]]
    started = [imports.start(_request(operation), 10, rows) for _ in range(AT_ONCE)]
    assert AT_ONCE == 3 and [status for status, _ in started] == [200, 200, 200]
    assert {job.state for job in imports.imports.values()} == {"PROCESSING"}
    status, said = imports.start(_request(operation), 10, rows)
    assert status == 400 and "at most 3 imports run at once" in said["message"]
    imports.release()
    assert {job.state for job in imports.imports.values()} == {"DONE"}
    assert imports.start(_request(operation), 10, rows)[0] == 200


def test_an_operation_hubspot_does_not_have_is_refused() -> None:
    status, said = _imports().start(_request("MERGE"), 10, [["Email", "City"]])
    assert status == 400 and "UPDATE, CREATE, UPSERT" in said["message"]
