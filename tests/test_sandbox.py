"""The sandbox's rules, in process over ASGI, with an injected clock."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from bulkleads.sandbox.app import Sandbox, SandboxConfig
from bulkleads.sandbox.leads import load_leads
from bulkleads.sandbox.limits import RollingWindow
from bulkleads.sandbox.server import ROUTES
from tests.conftest import SAMPLE

TOKEN = "sandbox-token"
GUID = "8a41f2f22906b93a012906b9438f0008"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make(clock: Clock | None = None, **config: object) -> Sandbox:
    leads = {GUID: {"guid": GUID, "city": "Boston", "closedAt": 0, "isCustomer": False}}
    return Sandbox(SandboxConfig(**config), leads, clock=clock or Clock(), routes=ROUTES)


def put(
    box: Sandbox,
    body: object,
    *,
    guid: str = GUID,
    token: str | None = TOKEN,
    content_type: str = "application/json",
    bearer: bool = False,
) -> httpx.Response:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=box.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
            params = {"access_token": token} if token and not bearer else {}
            headers = {"Content-Type": content_type}
            if bearer:
                headers["Authorization"] = f"Bearer {token}"
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            return await client.put(
                f"/leads/v1/lead/{guid}", params=params, content=raw, headers=headers
            )

    return asyncio.run(call())


def test_update_applies_fields_and_answers_204() -> None:
    """A valid PUT applies its fields and answers 204 with no body and the rate headers."""
    box = make()
    response = put(box, {"guid": GUID, "city": "Cambridge", "closedAt": 1323293954000})
    assert response.status_code == 204 and response.content == b""
    assert box.leads[GUID]["city"] == "Cambridge"
    assert response.headers["X-HubSpot-RateLimit-Max"] == "10"
    assert response.headers["X-HubSpot-RateLimit-Remaining"] == "9"
    assert response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "1000"
    assert response.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "39999"


@pytest.mark.parametrize(("token", "bearer"), [(None, False), ("wrong", False), ("wrong", True)])
def test_wrong_or_missing_token_is_401(token: str | None, bearer: bool) -> None:
    """Query and bearer tokens are both checked; a bad one changes nothing."""
    box = make()
    response = put(box, {"guid": GUID, "city": "X"}, token=token, bearer=bearer)
    assert response.status_code == 401 and "message" in response.json()
    assert box.leads[GUID]["city"] == "Boston"
    assert put(box, {"guid": GUID, "city": "Y"}, bearer=True).status_code == 204


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not valid JSON"),
        ([1], "must be a JSON object"),
        ({"city": "X"}, "guid is required"),
        ({"guid": "other", "city": "X"}, "does not match"),
        ({"guid": GUID, "score": 5}, "not editable: score"),
        ({"guid": GUID, "isCustomer": "yes"}, "expected a boolean"),
        ({"guid": GUID, "closedAt": "2024-01-01"}, "expected epoch milliseconds"),
    ],
)
def test_bad_bodies_are_400_with_a_message(body: object, message: str) -> None:
    """Body rules of the real API, each with its own message."""
    box = make()
    response = put(box, body)
    assert response.status_code == 400 and message in response.json()["message"]


def test_unknown_guid_is_404() -> None:
    """A lead the portal does not have."""
    assert put(make(), {"guid": "abc", "city": "X"}, guid="abc").status_code == 404


def test_wrong_content_type_is_a_silent_no_op() -> None:
    """Like HubSpot: 204, nothing applied, counted in the stats."""
    box = make()
    response = put(box, {"guid": GUID, "city": "X"}, content_type="text/plain")
    assert response.status_code == 204
    assert box.leads[GUID]["city"] == "Boston"
    assert box.ignored_content_type == 1


def test_rolling_window_is_exact() -> None:
    """Never more than N accepted in any window; rejected requests do not count."""
    clock = Clock()
    window = RollingWindow(3, 1.0, clock)
    accepted = []
    for step in range(40):
        clock.now = step * 0.1
        if window.try_accept():
            accepted.append(clock.now)
    for i in range(len(accepted) - 3):
        assert accepted[i + 3] - accepted[i] >= 1.0 - 1e-9
    assert window.peak == 3
    assert len(accepted) == 12  # 3 per second over 4 seconds, no more, no less


def test_429_bodies_headers_and_retry_after() -> None:
    """Over the limit: a HubSpot-shaped 429, Retry-After only when asked for."""
    clock = Clock()
    box = make(clock, limit=1, retry_after=True)
    assert put(box, {"guid": GUID, "city": "A"}).status_code == 204
    refused = put(box, {"guid": GUID, "city": "B"})
    assert refused.status_code == 429
    assert refused.json()["policyName"] == "TEN_SECONDLY_ROLLING"
    assert refused.headers["Retry-After"] == "1"
    assert box.leads[GUID]["city"] == "A"
    clock.now = 1.0
    assert put(box, {"guid": GUID, "city": "C"}).status_code == 204
    assert "Retry-After" not in put(make(clock, limit=1), {"guid": GUID}).headers


def test_daily_cap_answers_daily_429() -> None:
    """Past the daily cap every request is a DAILY 429."""
    box = make(daily=1, limit=100)
    assert put(box, {"guid": GUID, "city": "A"}).status_code == 204
    refused = put(box, {"guid": GUID, "city": "B"})
    assert (refused.status_code, refused.json()["policyName"]) == (429, "DAILY")
    assert refused.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "0"


def test_fail_rate_applies_nothing() -> None:
    """An injected 5xx changes nothing."""
    box = make(fail_rate=1.0)
    assert put(box, {"guid": GUID, "city": "X"}).status_code in (500, 502, 503, 504)
    assert box.leads[GUID]["city"] == "Boston"


def test_drop_rate_applies_then_loses_the_answer() -> None:
    """A dropped answer: the update is applied, the client sees no response."""
    box = make(drop_rate=1.0)
    with pytest.raises(Exception):  # noqa: B017 - ASGITransport re-raises the app's drop
        put(box, {"guid": GUID, "city": "Dropped"})
    assert box.leads[GUID]["city"] == "Dropped"


def test_seed_formats(tmp_path: Path) -> None:
    """Seeds from JSON (list or object), JSONL and CSV give the same leads."""
    (tmp_path / "a.json").write_text(json.dumps([{"guid": "g1", "city": "A"}]))
    (tmp_path / "b.json").write_text(json.dumps({"g1": {"city": "A"}}))
    (tmp_path / "c.jsonl").write_text('{"guid": "g1", "city": "A"}\n')
    (tmp_path / "d.csv").write_text("\ufeffGUID,city\ng1,A\n")
    expected = {"g1": {"guid": "g1", "city": "A"}}
    for name in ("a.json", "b.json", "c.jsonl", "d.csv"):
        assert load_leads(tmp_path / name) == expected, name


def test_state_survives_a_restart(tmp_path: Path, sandbox) -> None:
    """--state is saved on SIGTERM and loaded by the next sandbox."""
    state = tmp_path / "state.json"
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps([{"guid": GUID, "city": "Boston"}]))
    box = sandbox("--state", str(state), seed=seed)
    url = f"{box.url}/leads/v1/lead/{GUID}?access_token={TOKEN}"
    assert httpx.put(url, json={"guid": GUID, "city": "Kept"}).status_code == 204
    box.stop()
    again = sandbox("--state", str(state), seed=seed)
    assert again.state()[GUID]["city"] == "Kept"


def test_the_sandbox_keeps_its_own_rules() -> None:
    """The sandbox imports nothing of the client (only bulkleads.sandbox): a wrong rule in the
    client must fail against it, not be copied into it."""
    import ast

    folder = Path(__file__).resolve().parent.parent / "bulkleads" / "sandbox"
    outside = []
    for module in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level >= 2:
                outside.append(f"{module.name}: from {'.' * node.level}{node.module or ''}")
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom) and node.level == 0
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            outside += [
                f"{module.name}: {name}"
                for name in names
                if name.startswith("bulkleads") and not name.startswith("bulkleads.sandbox")
            ]
    assert outside == []


def test_a_batch_read_without_properties_with_history_is_accepted_as_hubspot_does() -> None:
    """HubSpot's spec marks propertiesWithHistory required; HubSpot and its examples omit it."""
    from bulkleads.sandbox.crm import CrmObjects

    crm = CrmObjects({"contacts": {"1": {"email": "a@x.io"}}})
    status, answer = crm.batch_read("contacts", {"inputs": [{"id": "1"}], "properties": ["email"]})
    assert status == 200 and answer["results"][0]["properties"]["email"] == "a@x.io"


def test_a_batch_read_takes_100_inputs_and_50_when_asking_for_history() -> None:
    """HubSpot's batch read: at most 100 inputs a request, 50 with propertiesWithHistory."""
    from bulkleads.sandbox.crm import CrmObjects

    crm = CrmObjects({"contacts": {str(i): {"email": f"{i}@x.io"} for i in range(1, 102)}})

    def read(count: int, history: list[str]) -> int:
        body = {
            "inputs": [{"id": str(i)} for i in range(1, count + 1)],
            "properties": ["email"],
            "propertiesWithHistory": history,
        }
        return crm.batch_read("contacts", body)[0]

    assert read(100, []) == 200 and read(101, []) == 400
    assert read(50, ["email"]) == 200 and read(51, ["email"]) == 400


def test_batch_create_and_archive_answer_in_hubspots_shapes() -> None:
    """batch/create: 201 with new ids (associations may be left out, as HubSpot's examples
    do); batch/archive: 204, and the records are gone."""
    from bulkleads.sandbox.crm import CrmObjects, schema_errors

    crm = CrmObjects({"contacts": {"7": {"email": "a@x.io"}}})
    status, answer = crm.batch_create("contacts", {"inputs": [{"properties": {"city": "X"}}]})
    assert status == 201
    assert schema_errors("contacts", "BatchResponseSimplePublicObject", answer) == []
    (made,) = answer["results"]
    assert made["id"] == "8" and crm.objects["contacts"]["8"] == {"city": "X"}
    assert crm.batch_archive("contacts", {"inputs": [{"id": "8"}]}) == (204, None)
    assert "8" not in crm.objects["contacts"]


def test_a_deal_without_name_or_stage_is_not_created() -> None:
    """HubSpot's guide: a deal is created with dealname and dealstage. Without them create
    and upsert refuse the whole batch (VALIDATION_ERROR) and make nothing; an upsert that
    only updates an existing deal needs neither."""
    from bulkleads.sandbox.crm import CrmObjects

    crm = CrmObjects({"deals": {"1": {"dealname": "Old", "email": "d@x.io"}}})
    crm.definitions["deals"]["email"] = {**crm.definitions["deals"]["dealname"], "name": "email"}
    crm.definitions["deals"]["email"]["hasUniqueValue"] = True
    status, answer = crm.batch_create("deals", {"inputs": [{"properties": {"dealname": "N"}}]})
    assert status == 400 and "dealstage is required" in answer["message"]
    upsert = {"idProperty": "email", "properties": {"amount": "1"}}
    status, answer = crm.batch_upsert("deals", {"inputs": [{"id": "new@x.io", **upsert}]})
    assert status == 400 and "dealname and dealstage are required" in answer["message"]
    assert crm.batch_upsert("deals", {"inputs": [{"id": "d@x.io", **upsert}]})[0] == 200
    assert list(crm.objects["deals"]) == ["1"]


def _call(box: Sandbox, method: str, path: str, body: object = None) -> httpx.Response:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=box.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
            headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
            return await client.request(method, path, json=body, headers=headers)

    return asyncio.run(call())


def test_associations_link_both_ways_read_archive_and_search_by_domain() -> None:
    """The 2026-09 association endpoints in HubSpot's shapes: default links are seen from
    both sides (279 / 280), a read names ids with none in a 207, archive removes the pair,
    labels list the types by id, and search finds companies by domain ignoring case, under a
    limit of its own that sends no rate headers."""
    from bulkleads.sandbox.crm import CrmObjects

    crm = CrmObjects(
        {
            "contacts": {"1": {"email": "a@x.io"}, "2": {"email": "b@x.io"}},
            "companies": {"10": {"domain": "acme.io"}, "11": {"domain": "beta.io"}},
        }
    )
    box = Sandbox(SandboxConfig(limit=None), {}, clock=Clock(), crm=crm, routes=ROUTES)
    root = "/crm/associations/2026-09"
    made = _call(
        box,
        "POST",
        f"{root}/contacts/companies/batch/associate/default",
        {
            "inputs": [
                {"from": {"id": "1"}, "to": {"id": "10"}},
                {"from": {"id": "2"}, "to": {"id": "99"}},
            ]
        },
    )
    assert made.status_code == 207 and made.json()["errors"][0]["context"]["ids"] == ["99"]
    assert [r["to"]["id"] for r in made.json()["results"]] == ["10"]
    read = _call(
        box, "POST", f"{root}/contacts/companies/batch/read", {"inputs": [{"id": "1"}, {"id": "2"}]}
    )
    assert read.status_code == 207
    (linked,) = read.json()["results"]
    assert linked["to"][0]["toObjectId"] == 10
    assert linked["to"][0]["associationTypes"][0]["typeId"] == 279
    back = _call(box, "POST", f"{root}/companies/contacts/batch/read", {"inputs": [{"id": "10"}]})
    assert back.json()["results"][0]["to"][0]["associationTypes"][0]["typeId"] == 280
    labels = _call(box, "GET", f"{root}/contacts/companies/labels").json()["results"]
    assert {(t["typeId"], t["label"], t["category"]) for t in labels} == {
        (279, None, "HUBSPOT_DEFINED"),
        (1, "Primary", "HUBSPOT_DEFINED"),
        (47, "Billing contact", "USER_DEFINED"),
    }
    billing = {"associationCategory": "USER_DEFINED", "associationTypeId": 47}
    labeled = {"inputs": [{"from": {"id": "1"}, "to": {"id": "10"}, "types": [billing]}]}
    made = _call(box, "POST", f"{root}/contacts/companies/batch/create", labeled)
    assert made.status_code == 201 and made.json()["results"][0]["labels"] == ["Billing contact"]
    types = _call(box, "POST", f"{root}/contacts/companies/batch/read", {"inputs": [{"id": "1"}]})
    assert [t["typeId"] for t in types.json()["results"][0]["to"][0]["associationTypes"]] == [
        47,
        279,
    ]
    unlabel = _call(box, "POST", f"{root}/contacts/companies/batch/labels/archive", labeled)
    assert unlabel.status_code == 204 and box.links.links[("contacts", "companies")]["1"]["10"] == {
        279
    }
    assert box.links.links[("companies", "contacts")]["10"]["1"] == {280}  # the other side too
    gone = _call(
        box,
        "POST",
        f"{root}/contacts/companies/batch/archive",
        {"inputs": [{"from": {"id": "1"}, "to": [{"id": "10"}]}]},
    )
    assert gone.status_code == 204 and box.links.pairs("companies", "contacts") == []

    query = {
        "filterGroups": [
            {
                "filters": [
                    {"propertyName": "domain", "operator": "IN", "values": ["ACME.io", "none.io"]}
                ]
            }
        ],
        "properties": ["domain"],
        "limit": 200,
    }
    found = _call(box, "POST", "/crm/objects/2026-09/companies/search", query)
    assert found.json()["results"] == [
        {"id": "10", "properties": {"domain": "acme.io"}, "archived": False}
    ]
    assert "X-HubSpot-RateLimit-Max" not in found.headers
    statuses = [
        _call(box, "POST", "/crm/objects/2026-09/companies/search", query).status_code
        for _ in range(6)
    ]
    assert statuses.count(429) >= 1  # six in the same second: past its own 5 a second


def test_a_batch_read_of_associations_takes_1000_inputs() -> None:
    from bulkleads.sandbox.associations import Associations
    from bulkleads.sandbox.crm import CrmObjects

    links = Associations(CrmObjects({"contacts": {}, "companies": {}}))

    def read(count: int) -> int:
        inputs = [{"id": str(i)} for i in range(count)]
        return links.batch_read("contacts", "companies", {"inputs": inputs})[0]

    assert read(1000) == 207  # none of them has links: named in the 207
    assert read(1001) == 400


def test_search_pages_stop_at_10000_results_and_new_records_show_late() -> None:
    """HubSpot's search: 200 a page from ``after``, no page past 10,000 results, and an index
    that is eventually consistent: a record just made is not found until it catches up."""
    from bulkleads.sandbox.associations import Associations
    from bulkleads.sandbox.crm import CrmObjects

    crm = CrmObjects({"companies": {str(i): {"city": "Oslo"} for i in range(1, 10_202)}})
    links = Associations(crm)

    def search(after: int, limit: int = 200) -> tuple[int, dict]:
        flt = {"propertyName": "city", "operator": "EQ", "value": "oslo"}
        body = {"filterGroups": [{"filters": [flt]}], "limit": limit, "after": str(after)}
        return links.search("companies", body)

    status, page = search(200)
    assert status == 200 and page["total"] == 10_201
    assert [r["id"] for r in page["results"]][:2] == ["201", "202"]
    assert page["paging"]["next"]["after"] == "400"
    status, last = search(9_800)
    assert status == 200 and len(last["results"]) == 200 and "paging" not in last
    assert search(9_900)[0] == 400  # its page would reach past 10,000
    made = {"inputs": [{"properties": {"city": "Bergen"}}]}
    assert crm.batch_create("companies", made)[0] == 201
    bergen = {"filterGroups": [{"filters": [{"propertyName": "city", "operator": "EQ",
              "value": "Bergen"}]}], "limit": 10}  # fmt: skip
    links.search_lag = 3600.0
    assert links.search("companies", bergen)[1]["total"] == 0  # not indexed yet
    links.search_lag = 0.0
    assert links.search("companies", bergen)[1]["total"] == 1


def test_the_sandbox_says_what_it_holds_of_every_object(tmp_path: Path) -> None:
    """Its start line counts the records it holds, CRM objects included (it said `0 leads`
    holding thousands of contacts)."""
    from bulkleads.sandbox.app import SandboxConfig
    from bulkleads.sandbox.server import build, holdings

    seeds = {}
    for name, count in (("contacts", 24), ("companies", 4), ("deals", 6)):
        seeds[name] = tmp_path / f"{name}.json"
        seeds[name].write_text(json.dumps([{"id": str(i)} for i in range(1, count + 1)]))
    assert holdings(build(SandboxConfig(crm_seeds=seeds))) == "24 contacts, 4 companies, 6 deals"
    assert holdings(build(SandboxConfig())) == "0 leads"
    seeds["cars"] = seeds.pop("deals")  # a custom object's records, counted by its name
    schemas = (SAMPLE / "cars_schema.json",)
    held = holdings(build(SandboxConfig(crm_seeds=seeds, crm_schemas=schemas)))
    assert held == "24 contacts, 4 companies, 6 cars"


def test_matching_by_a_property_hubspot_takes_no_key_of_is_its_400() -> None:
    """Only a unique property matches (hs_object_id is not one: leave idProperty out); a
    contact is read and upserted by email, but an update by email was reported refused."""
    from bulkleads.sandbox.crm import CrmObjects

    crm = CrmObjects({"contacts": {"1": {"email": "a@x.io", "city": "Oslo"}}})

    def by(prop: str, call: str = "batch_update") -> tuple[int, str]:
        item: dict[str, object] = {"id": "a@x.io", "idProperty": prop, "properties": {"city": "B"}}
        if call == "batch_read":
            body: dict[str, object] = {"inputs": [{"id": "a@x.io"}], "idProperty": prop,
                                       "properties": ["city"]}  # fmt: skip
        else:
            body = {"inputs": [item]}
        status, answer = getattr(crm, call)("contacts", body)
        return status, str(answer.get("message", ""))

    for prop in ("city", "hs_object_id"):
        status, said = by(prop)
        assert status == 400
        assert said == f"Unable to perform update/upsert by non-unique 0-1 property {prop}"
    assert by("email")[0] == 400
    assert by("email", "batch_read")[0] == 200 and by("email", "batch_upsert")[0] == 200
