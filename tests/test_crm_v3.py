"""CRM v3 batch updates: request shape (checked against HubSpot's spec), per-record results,
splitting a refused batch, and the whole job end to end through the sandbox."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import re
from collections import Counter
from datetime import UTC
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from bulkleads.bundle import Bundle
from bulkleads.fields import CLEAR, FieldError
from bulkleads.hubspot.crm_batch import CrmV3Target
from bulkleads.hubspot.crm_fields import crm_v3_rules
from bulkleads.jobstore.store import JobStore
from bulkleads.sandbox.crm import CrmObjects, schema_errors
from bulkleads.send.pacing import Pacer
from bulkleads.send.pool import Sender, SendOptions
from bulkleads.token import Token
from tests.conftest import read_report, run_cli, run_virtual

BASE = "https://api.example.test"
BATCH = "/crm/objects/2026-09/contacts/batch/update"


def make_store(tmp_path: Path, ids: list[str], extra: dict[str, dict[str, str]] | None = None):
    store = JobStore(tmp_path / "job.sqlite")
    bodies = {i: {"city": f"C{i}", **(extra or {}).get(i, {})} for i in ids}
    store.add_rows((n, n + 1, i, json.dumps(bodies[i]), "city", None) for n, i in enumerate(ids, 1))
    store.add_bundles((i, json.dumps(bodies[i]), n, "pending", None) for n, i in enumerate(ids, 1))
    return store


def run(store: JobStore, answer, batch_size: int = 100, limit: int = 100) -> list[dict]:
    """Send every bundle at ``limit`` per 10 s; ``answer(body) -> httpx.Response``; returns
    the request bodies."""
    bodies: list[dict] = []

    def respond(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer pat-secret"
        body = json.loads(request.content)
        assert schema_errors("contacts", "BatchInputSimplePublicObjectBatchInput", body) == []
        bodies.append(body)
        return answer(body)

    async def scenario() -> None:
        with respx.mock(base_url=BASE) as mock:
            mock.post(BATCH).mock(side_effect=respond)
            async with httpx.AsyncHTTPTransport() as transport:
                target = CrmV3Target(BASE, Token("pat-secret"), "contacts", batch_size=batch_size)
                await Sender(store, target, Pacer(limit, 10), transport, SendOptions()).run()

    run_virtual(scenario())
    return bodies


def updated(body: dict, status: int = 200, **extra: object) -> httpx.Response:
    """HubSpot's answer to a batch update that wrote every record of ``body``."""
    results = [{"id": item["id"], "properties": item["properties"]} for item in body["inputs"]]
    return httpx.Response(status, json={"status": "COMPLETE", "results": results, **extra})


def outcomes(store: JobStore) -> dict[str, tuple[str, int | None]]:
    return {r.guid: (r.state, r.status) for r in store.report_rows()}


def test_batches_of_up_to_batch_size_and_string_properties(tmp_path: Path) -> None:
    """250 records at batch size 100 are 3 requests; every body matches HubSpot's schema."""
    ids = [str(1000 + i) for i in range(250)]
    store = make_store(tmp_path, ids)
    bodies = run(store, updated)
    assert [len(b["inputs"]) for b in bodies] == [100, 100, 50]
    first = bodies[0]["inputs"][0]
    assert first == {"id": "1000", "properties": {"city": "C1000"}, "objectWriteTraceId": "1000"}
    assert {s for s, _ in outcomes(store).values()} == {"done"}


def test_207_fails_only_the_records_it_names(tmp_path: Path) -> None:
    """A Multi-Status answer: records in an error's context.ids fail, the rest are updated."""
    store = make_store(tmp_path, ["1", "2", "3"])
    error = {
        "status": "error",
        "category": "OBJECT_NOT_FOUND",
        "message": "gone",
        "context": {"ids": ["2"]},
        "errors": [],
        "links": {},
    }

    def answer(body: dict) -> httpx.Response:
        written = {"inputs": [i for i in body["inputs"] if i["id"] != "2"]}
        return updated(written, 207, errors=[error])

    run(store, answer)
    assert outcomes(store) == {"1": ("done", 207), "2": ("failed", 207), "3": ("done", 207)}
    assert next(r for r in store.report_rows() if r.guid == "2").reason == "OBJECT_NOT_FOUND: gone"


def test_refused_batch_fails_the_record_with_the_bad_property(tmp_path: Path) -> None:
    """A 400 naming an invalid property: that record fails, the others are sent again."""
    store = make_store(tmp_path, ["1", "2", "3"], {"2": {"colour": "teal"}})

    def answer(body: dict) -> httpx.Response:
        if any("colour" in item["properties"] for item in body["inputs"]):
            return httpx.Response(
                400,
                json={
                    "status": "error",
                    "category": "VALIDATION_ERROR",
                    "message": "Property values were not valid: "
                    '[{"name":"colour","error":"PROPERTY_DOESNT_EXIST"}]',
                },
            )
        return updated(body)

    bodies = run(store, answer)
    assert [len(b["inputs"]) for b in bodies] == [3, 2]
    assert outcomes(store) == {"1": ("done", 200), "2": ("failed", 400), "3": ("done", 200)}


def test_refused_batch_naming_nothing_is_bisected(tmp_path: Path) -> None:
    """A 400 that names no record: halves are sent until the bad record stands alone."""
    ids = [str(i) for i in range(1, 17)]
    store = make_store(tmp_path, ids)

    def answer(body: dict) -> httpx.Response:
        if any(item["id"] == "11" for item in body["inputs"]):
            return httpx.Response(400, json={"message": "something in this batch is wrong"})
        return updated(body)

    bodies = run(store, answer)
    result = outcomes(store)
    assert result.pop("11") == ("failed", 400)
    assert {s for s, _ in result.values()} == {"done"}
    assert len(bodies) <= 2 * 4 + 1  # log2(16) levels, two requests each, plus the first


def test_crm_rules_send_strings() -> None:
    """Dates become epoch-ms strings, booleans "true"/"false", clearing is "", ids are checked."""
    rules = crm_v3_rules(frozenset({"closedate"}), None)
    assert rules.coerce("closedate", "2024-03-01", UTC) == "1709251200000"
    assert rules.coerce("closedate", CLEAR, UTC) == ""
    assert rules.coerce("hs_is_vip", True, UTC) == "true"
    assert rules.coerce("amount", 12.5, UTC) == "12.5"
    with pytest.raises(FieldError):
        rules.coerce("closedate", "soon", UTC)
    assert rules.key_error("123") is None and "digits only" in str(rules.key_error("12a"))
    by_email = crm_v3_rules(frozenset(), "email")
    assert by_email.key_error("ada@example.com") is None


def test_sandbox_answers_match_hubspots_response_schemas() -> None:
    """The sandbox's 200 and 207 bodies validate against the spec's response schemas."""
    crm = CrmObjects({"contacts": {"1": {"city": ""}}})
    status, ok = crm.batch_update(
        "contacts", {"inputs": [{"id": "1", "properties": {"city": "X"}}]}
    )
    assert status == 200
    assert schema_errors("contacts", "BatchResponseSimplePublicObject", ok) == []
    status, partial = crm.batch_update(
        "contacts", {"inputs": [{"id": "9", "properties": {"city": "X"}}]}
    )
    assert status == 207 and partial["errors"][0]["context"] == {"ids": ["9"]}
    assert schema_errors("contacts", "BatchResponseSimplePublicObjectWithErrors", partial) == []
    status, refused = crm.batch_update("contacts", {"inputs": [{"id": 1, "properties": {}}]})
    assert status == 400 and "is not of type 'string'" in refused["message"]


def test_requests_go_through_the_pacer_per_request(tmp_path: Path) -> None:
    """Pacing counts requests, not records: 300 records are 3 requests, and at 2 requests per
    10 s the third waits for the first to leave the window."""
    store = make_store(tmp_path, [str(i) for i in range(300)])
    starts: list[float] = []

    def answer(body: dict) -> httpx.Response:
        starts.append(asyncio.get_running_loop().time())
        return updated(body)

    run(store, answer, limit=2)
    assert len(starts) == 3
    assert starts[1] - starts[0] < 1  # the window's budget of two goes at once
    assert starts[2] - starts[0] >= 10


def test_a_locked_portal_423_is_transient_and_retry_finishes_the_job(
    tmp_path: Path, sandbox
) -> None:
    """The sandbox answers every write 423 Locked (HubSpot digesting a large sync), as
    HubSpot does: nothing applied. With one attempt allowed each record fails naming the lock
    and nothing is written; once the lock is gone, `retry` sends them all (423 is transient)."""
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps([{"id": str(i), "city": ""} for i in range(1, 6)]))
    box = sandbox("--limit", "100", "--locked-rate", "1.0", "--crm-seed", f"contacts={seed}")
    box.configure(fail_definitions=False)  # the writes meet the lock, not the plan
    leads = tmp_path / "c.csv"
    leads.write_text("id,city\n" + "".join(f"{i},T{i}\n" for i in range(1, 6)))
    args = ("--api", "crm-v3", "--base-url", box.url, "--max-attempts", "1", "--no-backup")
    first = run_cli("update", str(leads), *args, cwd=tmp_path)
    assert first.code == 1, first.stderr
    report = read_report(tmp_path / "c.report.csv")
    assert {r["outcome"] for r in report} == {"failed"}
    assert all("portal locked (423)" in r["error"] for r in report), report
    assert box.stats()["requests"].get("423", 0) >= 1
    assert all(r["city"] == "" for r in box.state_of("contacts").values())
    box.configure(locked_rate=0.0)
    again = run_cli("retry", str(tmp_path / "c.report.csv"), cwd=tmp_path)
    assert again.code == 0, again.stderr
    assert {r["outcome"] for r in read_report(tmp_path / "c.report.csv")} == {"updated"}
    assert all(r["city"] == f"T{i}" for i, r in box.state_of("contacts").items())


def test_retry_of_a_crm_job_sends_batches_again(tmp_path: Path, sandbox) -> None:
    """`retry` rebuilds the CRM v3 target from the job file: after an outage, all updated."""
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps([{"id": str(i), "city": ""} for i in range(1, 6)]))
    box = sandbox("--limit", "100", "--crm-seed", f"contacts={seed}")
    box.configure(fail_rate=1.0, fail_definitions=False)  # the writes fail, not the plan
    leads = tmp_path / "c.csv"
    leads.write_text("id,city\n" + "".join(f"{i},T{i}\n" for i in range(1, 6)))
    first = run_cli(
        "update",
        str(leads),
        "--api",
        "crm-v3",
        "--base-url",
        box.url,
        "--max-attempts",
        "1",
        cwd=tmp_path,
    )
    assert first.code == 1
    box.configure(fail_rate=0.0)
    again = run_cli("retry", str(tmp_path / "c.report.csv"), cwd=tmp_path)
    assert again.code == 0, again.stderr
    assert {r["outcome"] for r in read_report(tmp_path / "c.report.csv")} == {"updated"}
    records = httpx.get(f"{box.url}/__sandbox/objects/contacts").json()
    assert all(records[str(i)]["city"] == f"T{i}" for i in range(1, 6))


def test_batch_reads_match_hubspots_spec_and_map_back_by_key() -> None:
    """The read request bulkleads builds and the sandbox's answers (200 and 207) match the
    spec; found records come back with their values, unknown ids as final failures, and by
    --id-property the results map back through that property."""
    crm = CrmObjects({"contacts": {"1": {"city": "A", "email": "a@x.io"}, "2": {"city": "B"}}})
    target = CrmV3Target(BASE, Token("pat-secret"), "contacts")
    bundles = [Bundle("1", {"city": "X"}, 1, 0), Bundle("9", {"city": "Y"}, 2, 0)]
    request = target.build_read(bundles)
    body = json.loads(request.content)
    assert request.url.path == "/crm/objects/2026-09/contacts/batch/read"
    assert schema_errors("contacts", "BatchReadInputSimplePublicObjectId", body) == []
    assert body["properties"] == ["city"]
    status, answer = crm.batch_read("contacts", body)
    assert status == 207
    assert schema_errors("contacts", "BatchResponseSimplePublicObjectWithErrors", answer) == []
    response = httpx.Response(status, json=answer, request=request)
    _, found = target.classify_read(response, bundles)
    assert found["1"].kind == "ok" and found["1"].values == {"city": "A", "hs_object_id": "1"}
    assert "9" not in found  # not an error of the read: the record is not_found
    by_email = CrmV3Target(BASE, Token("pat-secret"), "contacts", id_property="email")
    email_bundles = [Bundle("a@x.io", {"city": "X"}, 1, 0)]
    read = json.loads(by_email.build_read(email_bundles).content)
    assert read["idProperty"] == "email" and read["properties"] == ["city", "email"]
    status, answer = crm.batch_read("contacts", read)
    assert status == 200
    assert schema_errors("contacts", "BatchResponseSimplePublicObject", answer) == []
    _, found = by_email.classify_read(httpx.Response(200, json=answer), email_bundles)
    assert found["a@x.io"].values == {"city": "A", "email": "a@x.io", "hs_object_id": "1"}
    assert found["a@x.io"].record_id == "1"  # the write goes by this id
    write = by_email.body([Bundle("a@x.io", {"city": "X"}, 1, 0, record_id="1")])
    assert write["inputs"] == [
        {"id": "1", "properties": {"city": "X"}, "objectWriteTraceId": "a@x.io"}
    ]


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (lambda body: httpx.Response(200, content=b'{"status":"COMPLETE","resu'), "not whole JSON"),
        (lambda body: httpx.Response(200, text="<html>proxy says hi</html>"), "HTML page"),
        (lambda body: httpx.Response(200), "an empty body"),
        (lambda body: httpx.Response(200, json={"status": "COMPLETE"}), "JSON with no results"),
    ],
)
def test_an_answer_that_cannot_say_what_it_wrote_is_never_success(
    tmp_path: Path, answer, said: str
) -> None:
    """A 200 whose body is cut, an HTML page, empty or without results leaves every record
    unconfirmed, saying why: never updated."""
    store = make_store(tmp_path, ["1", "2", "3"])
    run(store, answer)
    assert {state for state, _ in outcomes(store).values()} == {"unconfirmed"}
    assert all(said in (r.reason or "") for r in store.report_rows())


def test_records_an_answer_does_not_name_stay_unconfirmed(tmp_path: Path) -> None:
    """A 207 whose errors name no id, or results that leave a record out: the records it
    names as written are updated, the rest unconfirmed."""
    store = make_store(tmp_path, ["1", "2", "3"])
    anonymous = {"status": "error", "category": "VALIDATION_ERROR", "message": "some failed"}

    def answer(body: dict) -> httpx.Response:
        written = {"inputs": [i for i in body["inputs"] if i["id"] == "1"]}
        return updated(written, 207, errors=[anonymous])

    run(store, answer)
    assert outcomes(store) == {
        "1": ("done", 207),
        "2": ("unconfirmed", 207),
        "3": ("unconfirmed", 207),
    }


def test_a_cut_short_answer_is_settled_by_reading_back(tmp_path: Path, sandbox) -> None:
    """The sandbox applies every write and cuts every answer short. Reading on (the
    default): each record is read back and counted updated only because it holds what was
    sent. --no-backup: nothing to read with, so each stays unconfirmed and the run exits 1;
    when the writes were not applied either, reading back fails them and retry sends them."""
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps([{"id": str(i), "city": ""} for i in range(1, 6)]))
    box = sandbox("--limit", "100", "--garble-rate", "1.0", "--crm-seed", f"contacts={seed}")
    leads = tmp_path / "c.csv"
    leads.write_text("id,city\n" + "".join(f"{i},T{i}\n" for i in range(1, 6)))
    args = ("update", str(leads), "--api", "crm-v3", "--base-url", box.url)
    settled = run_cli(*args, cwd=tmp_path)
    assert settled.code == 0, settled.stderr
    assert {r["outcome"] for r in read_report(tmp_path / "c.report.csv")} == {"updated"}
    unread = run_cli(*args, "--no-backup", "--fresh", cwd=tmp_path)
    assert unread.code == 1, unread.stderr
    report = read_report(tmp_path / "c.report.csv")
    assert {r["outcome"] for r in report} == {"unconfirmed"}
    assert all("not whole JSON" in r["error"] for r in report)
    box.configure(noop_rate=1.0)
    lost = tmp_path / "lost.csv"
    lost.write_text("id,city\n" + "".join(f"{i},L{i}\n" for i in range(1, 6)))
    failed = run_cli("update", str(lost), *args[2:], cwd=tmp_path)
    assert failed.code == 1, failed.stderr
    report = read_report(tmp_path / "lost.report.csv")
    assert {r["outcome"] for r in report} == {"failed"}
    assert all("does not hold it (city is" in r["error"] for r in report)
    box.configure(noop_rate=0.0, garble_rate=0.0)
    again = run_cli("retry", str(tmp_path / "lost.report.csv"), cwd=tmp_path)
    assert again.code == 0, again.stderr
    contacts = httpx.get(f"{box.url}/__sandbox/objects/contacts").json()
    assert all(contacts[str(i)]["city"] == f"L{i}" for i in range(1, 6))


@pytest.mark.parametrize(
    ("flags", "root"),
    [((), "/crm/objects/2026-09"), (("--api-version", "v3"), "/crm/v3/objects")],
    ids=["default 2026-09", "legacy v3"],
)
def test_the_api_version_is_the_jobs_for_its_run_retry_and_undo(
    tmp_path: Path, sandbox, flags: tuple[str, ...], root: str
) -> None:
    """2026-09 by default, v3 when asked; the job keeps its version, so its retry and its undo
    call the same paths whatever flags they are given."""
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps([{"id": str(i), "city": "Old"} for i in range(1, 4)]))
    box = sandbox("--crm-seed", f"contacts={seed}")
    box.configure(fail_rate=1.0, fail_definitions=False)  # the writes fail, not the plan
    leads = tmp_path / "c.csv"
    leads.write_text("id,city\n" + "".join(f"{i},New{i}\n" for i in range(1, 4)))
    args = ["--api", "crm-v3", "--base-url", box.url, "--max-attempts", "1", "-v", *flags]
    first = run_cli("update", str(leads), *args, cwd=tmp_path)
    assert first.code == 1, first.stderr
    assert f"POST {root}/contacts/batch/" in first.stderr
    box.configure(fail_rate=0.0)
    report = str(tmp_path / "c.report.csv")
    again = run_cli("retry", report, "-v", cwd=tmp_path)
    assert again.code == 0, again.stderr
    assert f"POST {root}/contacts/batch/update" in again.stderr
    back = run_cli("undo", report, "-v", cwd=tmp_path)
    assert back.code == 0, back.stderr
    assert f"POST {root}/contacts/batch/update" in back.stderr
    paths = set(re.findall(r"POST (/crm/\S+)", back.stderr))
    assert paths and all(p.startswith(root) for p in paths), paths
    records = httpx.get(f"{box.url}/__sandbox/objects/contacts").json()
    assert {records[str(i)]["city"] for i in range(1, 4)} == {"Old"}


def _migration(tmp_path: Path, sandbox, known: int) -> tuple[Any, Path, dict]:
    """A portal of ``known`` contacts, and a file of their emails (every 7th in upper case)
    plus 500 no contact has: the sandbox, the file, and the portal's records before."""
    seed = tmp_path / "seed.json"
    seed.write_text(
        json.dumps(
            [
                {"id": str(i), "email": f"c{i}@example.com", "city": "Old"}
                for i in range(1, known + 1)
            ]
        )
    )
    box = sandbox("--limit", "1000", "--crm-seed", f"contacts={seed}")
    emails = [f"c{i}@example.com" for i in range(1, known + 1)]
    emails = [e.upper() if i % 7 == 0 else e for i, e in enumerate(emails)]
    emails += [f"new{i}@example.com" for i in range(500)]
    leads = tmp_path / "migration.csv"
    leads.write_text("email,city\n" + "".join(f"{e},Berlin\n" for e in emails))
    return box, leads, httpx.get(f"{box.url}/__sandbox/objects/contacts").json()


def test_a_migration_keyed_by_email_updates_the_known_and_undoes_exactly(
    tmp_path: Path, sandbox
) -> None:
    """2,000 contacts keyed by email, a quarter unknown and some in other case: the known are
    read by email (ids and backup together) and written by id, the rest are not_found (exit 1),
    and undo leaves the portal as it was. A property that is not unique is refused before the
    first write."""
    known = 1500
    box, leads, portal = _migration(tmp_path, sandbox, known)
    args = ["--api", "crm-v3", "--object", "contacts", "--base-url", box.url]

    refused = run_cli("update", str(leads), *args, "--match", "city", cwd=tmp_path)
    assert refused.code == 2, refused.stderr
    assert "city is not a unique property" in refused.stderr and "email" in refused.stderr
    assert box.stats()["crm_applied_total"] == 0

    rehearsed = run_cli("update", str(leads), *args, "--match", "email", "--dry-run", cwd=tmp_path)
    assert rehearsed.code == 0, rehearsed.stderr
    with (tmp_path / "migration.dry-run.diff.csv").open(newline="") as f:
        assert next(csv.reader(f)) == ["email", "field", "current", "new"]  # the file's key
    sampled = box.stats()["reads"]  # the dry run's sample: 200 records, 2 requests

    ran = run_cli("update", str(leads), *args, "--match", "email", cwd=tmp_path)
    assert ran.code == 1, ran.stderr
    with (tmp_path / "migration.report.csv").open(newline="", encoding="utf-8-sig") as f:
        assert next(csv.reader(f))[:4] == ["row", "line", "email", "outcome"]
    rows = read_report(tmp_path / "migration.report.csv")
    assert Counter(r["outcome"] for r in rows) == {"updated": known, "not_found": 500}
    fed_back = run_cli("update", str(tmp_path / "migration.report.csv"), *args, cwd=tmp_path)
    assert fed_back.code == 2 and "bulkleads retry" in fed_back.stderr  # known by any key name
    records = httpx.get(f"{box.url}/__sandbox/objects/contacts").json()
    assert {r["city"] for r in records.values()} == {"Berlin"} and len(records) == known
    stats = box.stats()
    assert stats["reads"] - sampled == 20 and stats["crm_applied_total"] == known  # 100 each

    undone = run_cli("undo", str(tmp_path / "migration.report.csv"), cwd=tmp_path)
    assert undone.code == 0, undone.stderr
    assert httpx.get(f"{box.url}/__sandbox/objects/contacts").json() == portal


def test_create_makes_the_missing_records_and_undo_archives_exactly_those(
    tmp_path: Path, sandbox
) -> None:
    """The same file with --create: the known 1,500 are updated, the 500 unknown created by
    upsert (their ids in the report), and undo leaves the portal exactly as before: the
    updated restored, the created archived, nothing else touched."""
    known = 1500
    box, leads, portal = _migration(tmp_path, sandbox, known)
    args = ["--api", "crm-v3", "--object", "contacts", "--base-url", box.url, "--match", "email"]

    ran = run_cli("update", str(leads), *args, "--create", cwd=tmp_path)
    assert ran.code == 0, ran.stderr
    rows = read_report(tmp_path / "migration.report.csv")
    assert Counter(r["outcome"] for r in rows) == {"updated": known, "created": 500}
    records = httpx.get(f"{box.url}/__sandbox/objects/contacts").json()
    created = {r["email"]: r["record_id"] for r in rows if r["outcome"] == "created"}
    assert all(records[rid]["email"] == key for key, rid in created.items())
    assert len(records) == known + 500 and {r["city"] for r in records.values()} == {"Berlin"}
    assert box.stats()["crm_created"] == 500

    again = run_cli("update", str(leads), *args, "--create", cwd=tmp_path)
    assert again.code == 0 and box.stats()["crm_created"] == 500  # a rerun makes nothing twice

    undone = run_cli("undo", str(tmp_path / "migration.report.csv"), cwd=tmp_path)
    assert undone.code == 0, undone.stderr
    assert "500 it created to archive" in undone.stderr
    assert httpx.get(f"{box.url}/__sandbox/objects/contacts").json() == portal
    undo_rows = read_report(tmp_path / "migration.undo.report.csv")
    assert Counter(r["outcome"] for r in undo_rows) == {"updated": known, "archived": 500}


def test_deals_are_created_only_with_what_hubspot_needs(tmp_path: Path, sandbox) -> None:
    """HubSpot needs dealname and dealstage to create a deal: a file without the column is
    exit 2 before any record is read; a row without a value fails, named, and is never sent; the
    rows that have them are created and verified, and undo archives them."""
    props = tmp_path / "props.json"
    props.write_text(json.dumps([{"name": "deal_ref", "type": "string", "hasUniqueValue": True}]))
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps([{"id": "1", "deal_ref": "D-1", "dealname": "Old", "amount": "5"}]))
    box = sandbox("--crm-seed", f"deals={seed}", "--crm-properties", f"deals={props}", seed=None)
    args = ["--api", "crm-v3", "--object", "deals", "--base-url", box.url, "--match", "deal_ref"]
    no_stage = tmp_path / "no_stage.csv"
    no_stage.write_text("deal_ref,dealname,amount\nD-1,Renewal,10\nD-2,New,20\n")
    refused = run_cli("update", str(no_stage), *args, "--create", cwd=tmp_path)
    assert refused.code == 2, refused.stderr
    assert (
        "needs dealname and dealstage" in refused.stderr and "no dealstage column" in refused.stderr
    )
    assert box.stats()["reads"] == 0 and box.stats()["crm_created"] == 0  # properties only

    deals = tmp_path / "deals.csv"
    deals.write_text(
        "deal_ref,dealname,dealstage,amount\n"
        "D-1,Renewal,,10\n"  # found: updated, no stage needed
        "D-2,New,closedwon,20\n"  # created
        "D-3,,closedwon,30\n"  # would be created without a name: failed, never sent
    )
    ran = run_cli("update", str(deals), *args, "--create", "--verify", cwd=tmp_path)
    assert ran.code == 1, ran.stderr
    rows = {r["deal_ref"]: r for r in read_report(tmp_path / "deals.report.csv")}
    assert [rows[k]["outcome"] for k in ("D-1", "D-2", "D-3")] == ["updated", "created", "failed"]
    assert (
        "creating one needs dealname and dealstage: the row has no dealname"
        in (rows["D-3"]["error"])
    )
    assert "2 deals verified" in ran.stderr  # the created one read back too
    records = httpx.get(f"{box.url}/__sandbox/objects/deals").json()
    assert sorted(r["deal_ref"] for r in records.values()) == ["D-1", "D-2"]
    assert records[rows["D-2"]["record_id"]]["dealstage"] == "closedwon"

    undone = run_cli("undo", str(tmp_path / "deals.report.csv"), cwd=tmp_path)
    assert undone.code == 0, undone.stderr
    after = httpx.get(f"{box.url}/__sandbox/objects/deals").json()
    assert after == {"1": {"deal_ref": "D-1", "dealname": "Old", "amount": "5"}}


def test_create_needs_match_and_the_crm_api(tmp_path: Path) -> None:
    records = tmp_path / "c.csv"
    records.write_text("id,city\n101,Berlin\n")
    crm = run_cli(
        "update", str(records), "--api", "crm-v3", "--create", "--dry-run", cwd=tmp_path, token=None
    )
    assert crm.code == 2 and "--create needs --match PROPERTY" in crm.stderr
    v1 = run_cli(
        "update",
        str(records),
        "--api",
        "leads-v1",
        "--create",
        "--dry-run",
        cwd=tmp_path,
        token=None,
    )
    assert v1.code == 2 and "--create applies to the crm-v3 API" in v1.stderr
    implied = run_cli("update", str(records), "--create", "--dry-run", cwd=tmp_path, token=None)
    assert implied.code == 2 and "--create needs --match PROPERTY" in implied.stderr
    leads = run_cli(
        "update", str(records), "--api", "crm-v3", "--object", "leads", "--match", "x",
        "--create", "--dry-run", cwd=tmp_path, token=None,
    )  # fmt: skip
    assert leads.code == 2 and "association to an existing contact" in leads.stderr


def test_hubspots_own_client_round_trips_upsert_and_read_by_email(sandbox) -> None:
    """The sandbox answers HubSpot's Python client as HubSpot would: an upsert by email
    creates one record and updates the other (``new`` says which), and a read by email finds
    both in any case of the address."""
    from hubspot import HubSpot
    from hubspot.crm.contacts import (
        BatchInputSimplePublicObjectBatchInputUpsert,
        BatchReadInputSimplePublicObjectId,
        SimplePublicObjectBatchInputUpsert,
        SimplePublicObjectId,
    )

    box = sandbox(seed=None)
    httpx.post(  # one existing contact, through the sandbox's own API
        f"{box.url}/crm/objects/2026-09/contacts/batch/upsert",
        headers={"Authorization": "Bearer sandbox-token"},
        json={"inputs": [{"id": "ann@x.io", "idProperty": "email", "properties": {"city": "A"}}]},
    ).raise_for_status()
    client = HubSpot(access_token="sandbox-token", host=box.url)
    upsert = BatchInputSimplePublicObjectBatchInputUpsert(
        inputs=[
            SimplePublicObjectBatchInputUpsert(
                id=email, id_property="email", properties={"city": city}
            )
            for email, city in (("ann@x.io", "Berlin"), ("bob@x.io", "Paris"))
        ]
    )
    done = client.crm.contacts.batch_api.upsert(upsert)
    assert {r.properties["email"]: r.new for r in done.results} == {
        "ann@x.io": False,
        "bob@x.io": True,
    }
    read = BatchReadInputSimplePublicObjectId(
        inputs=[SimplePublicObjectId(id="ANN@x.io"), SimplePublicObjectId(id="bob@x.io")],
        properties=["city", "email"],
        id_property="email",
        properties_with_history=[],
    )
    found = client.crm.contacts.batch_api.read(read)
    assert sorted(r.properties["city"] for r in found.results) == ["Berlin", "Paris"]


def test_messages_name_one_record_of_each_object_in_english() -> None:
    """One company, two companies: the rules' noun is the singular of the object."""
    from bulkleads.fields import plural

    nouns = {obj: crm_v3_rules(frozenset(), None, obj).noun for obj in ("contacts", "companies")}
    assert nouns == {"contacts": "contact", "companies": "company"}
    assert plural(2, nouns["companies"]) == "companies"


def _refusing(value: str, **finding: object) -> httpx.Response:
    """HubSpot's 400 for a batch holding one refused option value (its findings list)."""
    details = [{"isValid": False, "name": "lifecyclestage", "error": "INVALID_OPTION", **finding}]
    return httpx.Response(
        400,
        json={
            "status": "error",
            "category": "VALIDATION_ERROR",
            "message": "Property values were not valid: " + json.dumps(details),
        },
    )


def test_a_refused_value_fails_only_the_records_that_send_it(tmp_path: Path) -> None:
    """3 records of 300 send an option HubSpot refuses, one in each batch of 100; the 400
    quotes the value (and lists the allowed options, `customer` among them): those 3 fail and
    the 297 that send `customer` are sent again and updated, 6 requests in all."""
    ids = [str(i) for i in range(1, 301)]
    bad = {"50", "150", "250"}
    stage = {i: {"lifecyclestage": "vip" if i in bad else "customer"} for i in ids}
    store = make_store(tmp_path, ids, stage)

    def answer(body: dict) -> httpx.Response:
        if any(item["properties"]["lifecyclestage"] == "vip" for item in body["inputs"]):
            allowed = '[label: "Customer"\nvalue: "customer"\n, label: "Lead"\nvalue: "lead"]'
            return _refusing("vip", message=f"vip was not one of the allowed options: {allowed}")
        return updated(body)

    bodies = run(store, answer)
    assert sorted(len(b["inputs"]) for b in bodies) == [99, 99, 99, 100, 100, 100]
    result = outcomes(store)
    assert {result.pop(i) for i in bad} == {("failed", 400)}
    assert set(result.values()) == {("done", 200)} and len(result) == 297


def test_a_refusal_quoting_no_value_splits_the_batch(tmp_path: Path) -> None:
    """An INVALID_OPTION whose message quotes no value names nobody: the batch is halved
    until the refused record stands alone; every other record is updated."""
    ids = [str(i) for i in range(1, 9)]
    stage = {i: {"lifecyclestage": "vip" if i == "6" else "customer"} for i in ids}
    store = make_store(tmp_path, ids, stage)

    def answer(body: dict) -> httpx.Response:
        if any(item["properties"]["lifecyclestage"] == "vip" for item in body["inputs"]):
            return _refusing("vip", message="one of the values is not allowed")
        return updated(body)

    bodies = run(store, answer)
    result = outcomes(store)
    assert result.pop("6") == ("failed", 400)
    assert set(result.values()) == {("done", 200)}
    assert len(bodies) == 1 + 2 + 2 + 2  # 8, then 4+4, 2+2, 1+1


def test_a_property_listed_without_a_value_splits_too(tmp_path: Path) -> None:
    """A 400 naming properties under ``context.propertyName`` quotes no value: no record
    fails for carrying the property; halving finds the one HubSpot refuses."""
    ids = ["1", "2", "3", "4"]
    store = make_store(tmp_path, ids, {"3": {"city": "Nowhere"}})

    def answer(body: dict) -> httpx.Response:
        if any(item["properties"]["city"] == "Nowhere" for item in body["inputs"]):
            return httpx.Response(
                400, json={"message": "invalid", "context": {"propertyName": ["city"]}}
            )
        return updated(body)

    run(store, answer)
    assert outcomes(store) == {
        "1": ("done", 200),
        "2": ("done", 200),
        "3": ("failed", 400),
        "4": ("done", 200),
    }


def _staged_portal(tmp_path: Path, sandbox, *flags: str) -> tuple[Any, Path]:
    """300 contacts at `lead` on a portal whose lifecycle stages include `vip`, and a file
    moving them to `customer`, 3 of them (one in each batch of 100) to `vip`."""
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps([{"id": str(i), "lifecyclestage": "lead"} for i in range(1, 301)]))
    props = tmp_path / "props.json"
    options = [{"label": s.title(), "value": s} for s in ("lead", "customer", "vip")]
    props.write_text(
        json.dumps(
            [
                {
                    "name": "lifecyclestage",
                    "type": "enumeration",
                    "fieldType": "select",
                    "options": options,
                }
            ]
        )
    )
    box = sandbox(
        "--crm-seed", f"contacts={seed}", "--crm-properties", f"contacts={props}", *flags, seed=None
    )
    rows = "".join(f"{i},{'vip' if i in (50, 150, 250) else 'customer'}\n" for i in range(1, 301))
    leads = tmp_path / "stages.csv"
    leads.write_text("id,lifecyclestage\n" + rows)
    return box, leads


def test_an_option_refused_after_the_plan_fails_only_its_records(tmp_path: Path, sandbox) -> None:
    """End to end: the portal refuses `vip` on write although its definitions (read first)
    list it. The 3 records sending it fail naming the value; the 297 good ones are updated,
    and read back by --verify."""
    box, leads = _staged_portal(tmp_path, sandbox)
    box.configure(refuse_values={"lifecyclestage": ["vip"]})
    done = run_cli(
        "update", str(leads), "--api", "crm-v3", "--base-url", box.url, "--verify", cwd=tmp_path
    )
    assert done.code == 1, done.stderr
    report = read_report(tmp_path / "stages.report.csv")
    failed = [r for r in report if r["outcome"] == "failed"]
    assert sorted(r["id"] for r in failed) == ["150", "250", "50"]
    assert all("'vip' was not one of the allowed options" in r["error"] for r in failed)
    assert Counter(r["outcome"] for r in report) == {"updated": 297, "failed": 3}
    assert "297 contacts verified (read back as sent)" in done.stderr
    records = box.state_of("contacts")
    assert Counter(r["lifecyclestage"] for r in records.values()) == {"customer": 297, "lead": 3}


def test_a_resumed_job_does_not_send_what_is_invalid_today(tmp_path: Path, sandbox) -> None:
    """A job deferred by the daily limit resumes after `vip` left the portal's options. The
    resumed plan checks against the definitions the first run read (remembered for a day):
    the portal refuses `vip` (its 400 fails only those 3 records), the definitions are read
    again at once, and the 3 rows are invalid in the report, the 297 updated; `vip` is never
    written. Forgotten definitions: the resumed plan itself counts the 3 invalid."""
    box, leads = _staged_portal(tmp_path, sandbox, "--daily", "1")
    args = ["update", str(leads), "--api", "crm-v3", "--base-url", box.url]
    first = run_cli(*args, "--no-backup", cwd=tmp_path)
    assert first.code == 3, first.stderr
    box.configure(daily=None, remove_options={"contacts": {"lifecyclestage": ["vip"]}})
    again = run_cli(*args, "--no-backup", cwd=tmp_path)
    assert again.code == 1, again.stderr
    assert "3 rows the portal refused are invalid" in again.stderr
    report = read_report(tmp_path / "stages.report.csv")
    invalid = [r for r in report if r["outcome"] == "invalid"]
    assert sorted(r["id"] for r in invalid) == ["150", "250", "50"]
    assert all("'vip' is not one of its options" in r["error"] for r in invalid)
    assert Counter(r["outcome"] for r in report) == {"updated": 297, "invalid": 3}
    records = box.state_of("contacts")
    assert Counter(r["lifecyclestage"] for r in records.values()) == {"customer": 297, "lead": 3}


def test_a_resumed_job_with_fresh_definitions_never_sends_what_is_invalid_today(
    tmp_path: Path, sandbox
) -> None:
    """The same, the remembered definitions gone (a day old): the resumed plan reads them,
    counts the 3 invalid before sending, and the portal refuses nothing."""
    box, leads = _staged_portal(tmp_path, sandbox, "--daily", "1")
    args = ["update", str(leads), "--api", "crm-v3", "--base-url", box.url, "--no-backup"]
    assert run_cli(*args, cwd=tmp_path).code == 3
    for kept in Path(os.environ["BULKLEADS_STATE_DIR"]).glob("portals/*.definitions.json"):
        kept.unlink()
    box.configure(daily=None, remove_options={"contacts": {"lifecyclestage": ["vip"]}})
    again = run_cli(*args, cwd=tmp_path)
    assert again.code == 1, again.stderr
    assert "3 rows not sent yet are invalid" in again.stderr
    assert box.stats()["requests"].get("400") is None
    report = read_report(tmp_path / "stages.report.csv")
    assert Counter(r["outcome"] for r in report) == {"updated": 297, "invalid": 3}


def test_a_refusal_in_the_report_names_the_property_and_value_and_ends_on_a_word(
    tmp_path: Path,
) -> None:
    """HubSpot's findings put the property's name last, after a message listing every
    allowed option: the report's reason names the property first and is cut at a word's end
    with an ellipsis, never mid-word (it used to end in `"name":"dealsta`)."""
    options = ", ".join(f'label: "Stage {i}" value: "stage{i}"' for i in range(40))
    message = f"Won! was not one of the allowed options: [{options}]"
    store = make_store(tmp_path, ["1"], {"1": {"dealstage": "Won!"}})

    def answer(body: dict) -> httpx.Response:
        return _refusing("Won!", message=message, name="dealstage")

    run(store, answer)
    (row,) = store.report_rows()
    assert row.state == "failed"
    reason = row.reason or ""
    assert reason.startswith(
        "Property values were not valid: dealstage: Won! was not one of the allowed options"
    )
    assert len(reason) <= 300 and reason.endswith("…")
    whole = f"Property values were not valid: dealstage: {message} (INVALID_OPTION)"
    kept = reason[:-1]
    assert whole.startswith(kept) and whole[len(kept)] in " ,;:"  # cut between words


def test_shorten_cuts_only_between_words() -> None:
    """Short text is kept whole; long text ends at a word's end with an ellipsis."""
    from bulkleads.hubspot.http import shorten

    assert shorten("a few words", 300) == "a few words"
    cut = shorten("alpha beta gamma delta epsilon", 17)
    assert cut == "alpha beta gamma…"


def test_the_summary_counts_every_request_the_portal_counted(tmp_path: Path, sandbox) -> None:
    """The done line and the summary count the property read before the writes too: what the
    portal counted is what the run says it made."""
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps([{"id": str(i), "city": ""} for i in range(1, 251)]))
    box = sandbox("--crm-seed", f"contacts={seed}", seed=None)
    leads = tmp_path / "c.csv"
    leads.write_text("id,city\n" + "".join(f"{i},T{i}\n" for i in range(1, 251)))
    summary = tmp_path / "summary.json"
    args = ["update", str(leads), "--api", "crm-v3", "--base-url", box.url]
    done = run_cli(*args, "--summary", str(summary), cwd=tmp_path)
    assert done.code == 0, done.stderr
    counted = sum(box.stats()["requests"].values())
    assert counted == 1 + 3 + 3  # the definitions, 3 reads, 3 writes
    said = json.loads(summary.read_text())
    assert said["requests"] == counted and said["requests_before_sending"] == 1
    assert f"{counted} requests (1 before sending; 200: 6)" in done.stderr


def test_an_undo_preview_projects_from_its_sample_alone(tmp_path: Path, sandbox) -> None:
    """The undo of a migration that updated 1,000 contacts and created 500: its dry run reads
    200 of the 1,000 and projects exactly 1,000 to put back (the records to archive are
    neither drawn nor counted as read), and its plan counts the rows its report will have."""
    box, leads, _ = _migration(tmp_path, sandbox, 1000)
    args = ["--api", "crm-v3", "--base-url", box.url, "--match", "email", "--create"]
    assert run_cli("update", str(leads), *args, cwd=tmp_path).code == 0
    report = str(tmp_path / "migration.report.csv")
    preview = run_cli("undo", report, "--dry-run", "--log-format", "json", cwd=tmp_path)
    assert preview.code == 0, preview.stderr
    events = [json.loads(line) for line in preview.stderr.splitlines()]
    sample = next(e for e in events if e["event"] == "sample")
    assert (sample["read"], sample["bundles"]) == (200, 1000)
    field = next(e for e in events if e["event"] == "diff_field")
    assert (field["field"], field["change"], field["already"]) == ("city", 1000, 0)
    plan = next(e for e in events if e["event"] == "plan")
    done = next(e for e in events if e["event"] == "summary")
    assert plan["records"] == done["rows"] == 1500


def test_the_property_read_keeps_its_place_in_a_full_window(tmp_path: Path, sandbox) -> None:
    """5,000 records at 100 requests per 10 s: the property read, 50 reads and 50 writes are
    101 requests, one over a window; the pacer counts the read as its own until its answer, so
    the portal refuses none (timed from its start, it freed its slot early: one 429)."""
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps([{"id": str(i), "city": ""} for i in range(1, 5001)]))
    box = sandbox("--limit", "100", "--window", "10", "--crm-seed", f"contacts={seed}", seed=None)
    leads = tmp_path / "c.csv"
    leads.write_text("id,city\n" + "".join(f"{i},T\n" for i in range(1, 5001)))
    done = run_cli("update", str(leads), "--api", "crm-v3", "--base-url", box.url, cwd=tmp_path)
    assert done.code == 0, done.stderr
    assert box.stats()["requests"] == {"200": 101}


def test_a_portals_validation_rule_fails_only_the_records_that_break_it(
    tmp_path: Path, sandbox
) -> None:
    """Since 2026-09 HubSpot enforces a portal's property validation rules on API writes, per
    record: a contact made a customer without a company fails with the rule's words, the
    other records of its batch (updated and created) are written, and the failed rows come
    back in their own file; fixed there, they go through."""
    seed = tmp_path / "contacts.json"
    seed.write_text(
        json.dumps([{"id": str(i), "properties": {"email": f"c{i}@x.io"}} for i in (1, 2, 3)])
    )
    box = sandbox("--limit", "100", "--crm-seed", f"contacts={seed}", seed=None)
    rule = {"when": {"lifecyclestage": "customer"}, "required": ["company"]}
    box.configure(validation_rules={"contacts": [rule]})
    (tmp_path / "c.csv").write_text(
        "email,lifecyclestage,company\nc1@x.io,customer,Acme\nc2@x.io,customer,\n"
        "c3@x.io,lead,\nnew@x.io,customer,\n"
    )
    args = ["--api", "crm-v3", "--match", "email", "--create", "--base-url", box.url]
    ran = run_cli("update", "c.csv", *args, cwd=tmp_path)
    assert ran.code == 1, ran.stderr
    rows = {r["email"]: r for r in read_report(tmp_path / "c.report.csv")}
    assert rows["c1@x.io"]["outcome"] == "updated" and rows["c3@x.io"]["outcome"] == "updated"
    said = 'Property "company" is required when lifecyclestage is customer'
    for broken in ("c2@x.io", "new@x.io"):
        assert rows[broken]["outcome"] == "failed" and said in rows[broken]["error"]
    held = {r["email"]: r for r in box.state_of("contacts").values()}
    assert held["c1@x.io"]["lifecyclestage"] == "customer"
    assert "lifecyclestage" not in held["c2@x.io"] and "new@x.io" not in held
    failed = tmp_path / "c.failed.csv"
    fixed = failed.read_text().replace("customer,", "customer,Beta", 2)
    failed.write_text(fixed)
    again = run_cli("update", str(failed), *args, cwd=tmp_path)
    assert again.code == 0, again.stderr
    held = {r["email"]: r for r in box.state_of("contacts").values()}
    assert held["c2@x.io"]["company"] == "Beta" and held["new@x.io"]["company"] == "Beta"
