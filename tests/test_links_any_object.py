"""Links between any two objects the portal associates, end to end (the real CLI against the
real sandbox): a standard object to a custom one and back, two custom objects, a custom pair
with a portal's own label, engagements; and the pairs a portal does not have, refused before
the first write. A custom object goes into HubSpot's paths by its type id: the sandbox, as
HubSpot since June 2025, does not know a custom object by its plain name in a path."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import respx

from bulkleads.errors import UsageError
from bulkleads.hubspot.crm import Crm
from bulkleads.hubspot.objects import CustomObject
from bulkleads.sandbox import SANDBOX_TOKEN
from bulkleads.token import Token
from tests.conftest import SAMPLE, json_lines, read_report, run_cli

SCHEMA = SAMPLE / "cars_schema.json"
CARS = "2-1234567"
GARAGES = "2-7654321"
GARAGES_SCHEMA = {
    "id": "7654321",
    "name": "garages",
    "labels": {"singular": "Garage", "plural": "Garages"},
    "objectTypeId": GARAGES,
    "fullyQualifiedName": "p1234_garages",
    "primaryDisplayProperty": "garage_code",
    "requiredProperties": ["garage_code"],
    "properties": [
        {"name": "garage_code", "label": "Code", "type": "string", "hasUniqueValue": True},
        {"name": "city", "label": "City", "type": "string"},
    ],
    "associations": [
        {"id": "4321", "fromObjectTypeId": GARAGES, "toObjectTypeId": CARS, "name": "garage_cars"}
    ],
}


BASE = "https://api.hubapi.com"
SCHEMAS = f"{BASE}/crm-object-schemas/2026-09/schemas"
CAR = CustomObject(CARS, "cars", "p1234_cars", "car", ("vin", "model"), ("contacts", "garages"))
GARAGE = CustomObject(GARAGES, "garages", "p1234_garages", "garage", ("garage_code",), ("cars",))


def _schemas() -> dict[str, object]:
    cars = json.loads(SCHEMA.read_text())
    cars["associations"].append({"id": "99", "fromObjectTypeId": CARS, "toObjectTypeId": GARAGES})
    return {"results": [cars, GARAGES_SCHEMA]}


def _link(api: Crm, *names: str) -> tuple[Crm, int]:
    return api.link_objects(BASE, Token("pat-na1-x"), names, timeout=5, patience=0)


def test_custom_objects_link_by_name_and_their_schemas_name_each_other() -> None:
    """The schemas name associations by type id; a custom object's among them is named too."""
    from bulkleads.hubspot.objects import fetch_custom_objects

    with respx.mock(assert_all_called=True) as mock:
        mock.get(SCHEMAS).respond(200, json=_schemas())
        customs = fetch_custom_objects(
            BASE, Token("pat-na1-x"), version="2026-09", timeout=5, patience=0
        )
    assert customs == [CAR, GARAGE]


@pytest.mark.parametrize("name", ["cars", "Cars", "p_cars", "p1234_cars", CARS])
def test_a_link_column_naming_a_custom_object_any_way_goes_out_by_its_type_id(name: str) -> None:
    """Contacts link to cars (the cars schema names contacts): one schemas read, no labels
    read; every HubSpot path of the links then names cars by its type id, and the job keeps
    the schema so a retry or undo needs no read."""
    with respx.mock(assert_all_called=True) as mock:
        mock.get(SCHEMAS).respond(200, json=_schemas())
        api, made = _link(Crm("contacts"), name)
    assert made == 1 and api.linked == (CAR,)
    assert api.address(name) == CARS and api.address("companies") == "companies"
    ends = api.link_targets(BASE, Token("pat-na1-x"), name, "vin")
    assert f"/contacts/{CARS}/" in ends.reader.build_read([]).url.path
    assert ends.finder is not None and f"/objects/2026-09/{CARS}/" in str(ends.finder.build([]).url)
    assert Crm.from_meta(api.to_meta()) == api


def test_hubspots_own_pairs_are_asked_of_no_portal_and_another_pair_of_its_labels() -> None:
    with respx.mock(assert_all_called=False) as mock:
        labels = mock.get(f"{BASE}/crm/associations/2026-09/contacts/quotes/labels")
        labels.respond(200, json={"results": [{"category": "HUBSPOT_DEFINED", "typeId": 69}]})
        api, made = _link(Crm("contacts"), "companies", "notes", "0-2")  # 0-2: companies
        assert made == 0 and not labels.called and api.address("0-2") == "0-2"
        api, made = _link(Crm("contacts"), "quotes")
        assert made == 1 and labels.called and api.address("quotes") == "quotes"
        labels.respond(404, json={"status": "error", "message": "Not found."})
        with pytest.raises(UsageError, match="does not associate contacts with quotes"):
            _link(Crm("contacts"), "quotes")


def test_a_custom_objects_schema_decides_what_it_links_to() -> None:
    """Cars link to contacts and garages (the schemas say), not to deals (no labels read:
    a custom object's associations are its schema's); contacts do not link to garages."""
    cars = Crm(CARS, custom=CAR)
    with respx.mock(assert_all_called=True) as mock:
        mock.get(SCHEMAS).respond(200, json=_schemas())
        api, _ = _link(cars, "contacts", "garages")
        assert api.linked == (GARAGE,)
        with pytest.raises(UsageError, match="does not associate contacts with garages"):
            _link(Crm("contacts"), "garages")
    with pytest.raises(UsageError, match="does not associate cars with deals"):
        _link(cars, "deals")


def test_a_custom_object_linking_to_another_reads_the_schemas_once() -> None:
    """--object garages reads the schemas to resolve itself; its links to cars take cars
    from that read, not from a second one."""
    with respx.mock(assert_all_called=True) as mock:
        schemas = mock.get(SCHEMAS).respond(200, json=_schemas())
        garages = Crm("garages").resolve(BASE, Token("pat-na1-x"), timeout=5, patience=0)
        api, made = _link(garages, "cars")
    assert schemas.call_count == 1 and made == 0 and api.address("cars") == CARS


def test_without_the_schema_scope_a_link_column_says_which_column_needed_it() -> None:
    with respx.mock() as mock:
        mock.get(SCHEMAS).respond(403, json={"status": "error", "message": "forbidden"})
        with pytest.raises(UsageError) as refused:
            _link(Crm("contacts"), "compnies")
    said = str(refused.value)
    assert "column associate:compnies" in said and "did you mean associate:companies" in said
    assert "crm.schemas.custom.read" in said


def _portal(tmp_path: Path, sandbox):
    """Contacts 1001-1003, cars 501-503 (V1-V3), garages 901-902, deals 7001, notes 8001-8002."""
    seeds = {
        "contacts": {str(1000 + i): {"email": f"user{i}@example.com"} for i in (1, 2, 3)},
        "cars": {str(500 + i): {"vin": f"V{i}", "model": "Golf"} for i in (1, 2, 3)},
        "garages": {"901": {"garage_code": "G1"}, "902": {"garage_code": "G2"}},
        "deals": {"7001": {"dealname": "Fleet", "dealstage": "closedwon"}},
        "notes": {
            "8001": {"hs_note_body": "called", "hs_timestamp": "2026-12-01T10:00:00Z"},
            "8002": {"hs_note_body": "emailed", "hs_timestamp": "2026-12-02T10:00:00Z"},
        },
    }
    flags: list[str] = []
    for name, records in seeds.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps([{"id": k, "properties": v} for k, v in records.items()]))
        flags += ["--crm-seed", f"{name}={path}"]
    garages = tmp_path / "garages_schema.json"
    garages.write_text(json.dumps(GARAGES_SCHEMA))
    return sandbox(
        "--crm-schema", str(SCHEMA), "--crm-schema", str(garages), *flags, seed=None
    )  # fmt: skip


def _pairs(box, a: str, b: str) -> list[list[str]]:
    return httpx.get(f"{box.url}/__sandbox/associations/{a}/{b}").json()


def _update(tmp_path: Path, box, name: str, *args: str):
    return run_cli(
        "update", name, "--api", "crm-v3", "--base-url", box.url, "--log-format", "json", *args,
        cwd=tmp_path,
    )  # fmt: skip


def test_contacts_linked_to_a_custom_object_by_its_unique_property_and_undone(
    tmp_path: Path, sandbox
) -> None:
    """A contacts file names cars by VIN (the cars schema associates cars with contacts, so
    contacts link to cars): the column's object is found in the schemas and every request
    names it by its type id; undo removes exactly the links made."""
    box = _portal(tmp_path, sandbox)
    (tmp_path / "c.csv").write_text(
        "email,associate:cars\nuser1@example.com,V1\nuser2@example.com,V2;V3\n"
    )
    done = _update(
        tmp_path, box, "c.csv", "--object", "contacts", "--match", "email",
        "--associate-by", "cars=vin",
    )  # fmt: skip
    assert done.code == 0, done.stderr
    found = next(e for e in json_lines(done.stderr) if e["event"] == "linked_object")
    assert found["object_type_id"] == CARS
    assert _pairs(box, "contacts", "cars") == [["1001", "501"], ["1002", "502"], ["1002", "503"]]
    assert _pairs(box, "cars", "contacts") == [["501", "1001"], ["502", "1002"], ["503", "1002"]]
    assert box.stats()["off_path"] == []  # no request named cars by its plain name
    rows = read_report(tmp_path / "c.report.csv")
    assert [row["associations"] for row in rows] == [
        "cars V1 (501): added",
        "cars V2 (502): added; cars V3 (503): added",
    ]
    undone = run_cli("undo", "c.report.csv", cwd=tmp_path)
    assert undone.code == 0, undone.stderr
    assert _pairs(box, "contacts", "cars") == []
    assert box.stats()["off_path"] == []


def test_two_custom_objects_linked_by_id_and_undone(tmp_path: Path, sandbox) -> None:
    """Garages, a custom object whose schema associates it with cars, another custom
    object: a garages file keyed by its unique code links each garage to cars by id; the job
    keeps the cars' type id, so its undo names cars by it too."""
    box = _portal(tmp_path, sandbox)
    (tmp_path / "g.csv").write_text("garage_code,city,associate:cars\nG1,Oslo,501;502\nG2,,503\n")
    done = _update(tmp_path, box, "g.csv", "--object", "garages", "--match", "garage_code")
    assert done.code == 0, done.stderr
    assert _pairs(box, "garages", "cars") == [["901", "501"], ["901", "502"], ["902", "503"]]
    assert box.state_of("garages")["901"]["city"] == "Oslo"
    undone = run_cli("undo", "g.report.csv", cwd=tmp_path)
    assert undone.code == 0, undone.stderr
    assert _pairs(box, "garages", "cars") == []
    assert box.state_of("garages")["901"].get("city", "") == ""
    assert box.stats()["off_path"] == []  # the undo too named cars by the type id it kept


def test_a_custom_pair_linked_with_the_portals_own_label(tmp_path: Path, sandbox) -> None:
    """A portal admin made a label for contacts to cars (with HubSpot's own client, against
    the sandbox's labels endpoint): ``--association-label cars=Owner`` finds its type id and
    the links carry it; undo removes them."""
    from hubspot import HubSpot
    from hubspot.crm.associations.v4.schema import PublicAssociationDefinitionCreateRequest

    box = _portal(tmp_path, sandbox)
    client = HubSpot(access_token=SANDBOX_TOKEN, host=box.url)
    made = client.crm.associations.v4.schema.definitions_api.create(
        "0-1", CARS, PublicAssociationDefinitionCreateRequest(label="Owner", name="owner")
    )
    owner = next(t.type_id for t in made.results if t.label == "Owner")
    (tmp_path / "c.csv").write_text("email,associate:cars\nuser1@example.com,501\n")
    done = _update(
        tmp_path, box, "c.csv", "--object", "contacts", "--match", "email",
        "--association-label", "cars=owner",
    )  # fmt: skip
    assert done.code == 0, done.stderr
    read = httpx.post(
        f"{box.url}/crm/associations/2026-09/contacts/{CARS}/batch/read",
        json={"inputs": [{"id": "1001"}]},
        headers={"Authorization": f"Bearer {SANDBOX_TOKEN}"},
    ).json()
    types = read["results"][0]["to"][0]["associationTypes"]
    assert {t["typeId"]: t["label"] for t in types}[owner] == "Owner"
    assert box.stats()["labels_added"] == 1
    undone = run_cli("undo", "c.report.csv", cwd=tmp_path)
    assert undone.code == 0, undone.stderr
    assert _pairs(box, "contacts", "cars") == []


def test_notes_linked_to_contacts_and_deals_and_undone(tmp_path: Path, sandbox) -> None:
    """Engagements: notes by id, each linked to a contact and a deal (HubSpot's own types,
    asked of no portal); undo removes the links and puts the body back."""
    box = _portal(tmp_path, sandbox)
    (tmp_path / "n.csv").write_text(
        "id,hs_note_body,associate:contacts,associate:deals\n8001,Called twice,1001,7001\n"
        "8002,,1002;1003,7001\n"
    )
    done = _update(tmp_path, box, "n.csv", "--object", "notes", "--guid-column", "id")
    assert done.code == 0, done.stderr
    assert _pairs(box, "notes", "contacts") == [
        ["8001", "1001"],
        ["8002", "1002"],
        ["8002", "1003"],
    ]
    assert _pairs(box, "deals", "notes") == [["7001", "8001"], ["7001", "8002"]]
    assert box.state_of("notes")["8001"]["hs_note_body"] == "Called twice"
    undone = run_cli("undo", "n.report.csv", cwd=tmp_path)
    assert undone.code == 0, undone.stderr
    assert _pairs(box, "notes", "contacts") == [] and _pairs(box, "notes", "deals") == []
    assert box.state_of("notes")["8001"]["hs_note_body"] == "called"


@pytest.mark.parametrize(
    ("args", "header", "said"),
    [
        # the cars schema associates cars with contacts only
        (
            ("--object", "cars", "--match", "vin"),
            "vin,associate:deals\nV1,7001\n",
            "the portal does not associate cars with deals",
        ),
        # no association labels from contacts to quotes on this portal: asked, and refused
        (
            ("--object", "contacts", "--match", "email"),
            "email,associate:quotes\nuser1@example.com,1\n",
            "the portal does not associate contacts with quotes",
        ),
        (
            ("--object", "contacts", "--match", "email"),
            "email,associate:carz\nuser1@example.com,501\n",
            "no such object (did you mean associate:cars?)",
        ),
        # garages link to cars, not to contacts
        (
            ("--object", "contacts", "--match", "email"),
            "email,associate:garages\nuser1@example.com,901\n",
            "the portal does not associate contacts with garages",
        ),
    ],
)
def test_a_pair_the_portal_does_not_associate_stops_before_any_write(
    tmp_path: Path, sandbox, args: tuple[str, ...], header: str, said: str
) -> None:
    box = _portal(tmp_path, sandbox)
    (tmp_path / "f.csv").write_text(header)
    refused = _update(tmp_path, box, "f.csv", *args)
    assert refused.code == 2 and said in refused.stderr, refused.stderr
    stats = box.stats()
    assert stats["crm_applied_total"] == 0 and stats["links_added"] == 0
    assert not (tmp_path / "f.report.csv").exists()


def test_without_the_token_a_dry_run_links_only_to_hubspots_own_pairs(tmp_path: Path) -> None:
    """No portal to ask: a link to a custom object cannot be checked, and says so."""
    (tmp_path / "c.csv").write_text("email,associate:cars\nuser1@example.com,501\n")
    refused = run_cli(
        "update", "c.csv", "--api", "crm-v3", "--match", "email", "--dry-run", cwd=tmp_path,
        token=None,
    )  # fmt: skip
    assert refused.code == 2
    assert "a contact can be linked to companies, deals, tickets" in refused.stderr
    assert "needs the token" in refused.stderr


def test_notes_migrated_from_another_crm_are_created_with_their_time_and_linked(
    tmp_path: Path, sandbox
) -> None:
    """Notes keyed by the old system's id (a unique property of the portal's): created with
    the time each happened, which HubSpot needs (a file without that column is exit 2 before
    any write), and linked to their contacts; undo archives them."""
    unique = [{"name": "legacy_id", "type": "string", "fieldType": "text", "hasUniqueValue": True}]
    (tmp_path / "notes_props.json").write_text(json.dumps(unique))
    contacts = [{"id": str(1000 + i), "properties": {"email": f"u{i}@x.io"}} for i in (1, 2)]
    (tmp_path / "contacts.json").write_text(json.dumps(contacts))
    box = sandbox(
        "--crm-properties", f"notes={tmp_path / 'notes_props.json'}",
        "--crm-seed", f"contacts={tmp_path / 'contacts.json'}", seed=None,
    )  # fmt: skip
    args = ("--object", "notes", "--match", "legacy_id", "--create")
    (tmp_path / "bare.csv").write_text("legacy_id,hs_note_body\nN1,hello\n")
    refused = _update(tmp_path, box, "bare.csv", *args)
    assert refused.code == 2 and "hs_timestamp" in refused.stderr
    (tmp_path / "n.csv").write_text(
        "legacy_id,hs_note_body,hs_timestamp,associate:contacts\n"
        "N1,Met at the fair,2024-05-02T09:30:00Z,1001\n"
        "N2,Sent the offer,2024-05-03T10:00:00Z,1002\n"
    )
    done = _update(tmp_path, box, "n.csv", *args)
    assert done.code == 0, done.stderr
    notes = box.state_of("notes")
    assert sorted(n["legacy_id"] for n in notes.values()) == ["N1", "N2"]
    by_legacy = {n["legacy_id"]: rid for rid, n in notes.items()}
    assert _pairs(box, "notes", "contacts") == sorted(
        [[by_legacy["N1"], "1001"], [by_legacy["N2"], "1002"]]
    )
    undone = run_cli("undo", "n.report.csv", cwd=tmp_path)
    assert undone.code == 0, undone.stderr
    assert box.state_of("notes") == {} and _pairs(box, "contacts", "notes") == []
