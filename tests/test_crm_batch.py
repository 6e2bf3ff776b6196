"""The CRM batch requests and how their answers map back to records, on HubSpot's shapes:
upsert (creating), archive (an undo's), reads by a unique property, 207 errors by trace id or
by record id, and the write answers that name records by count."""

from __future__ import annotations

import json

import httpx
import pytest

from bulkleads.bundle import Bundle
from bulkleads.hubspot.crm_batch import CrmV3Target, Refusal
from bulkleads.hubspot.http import Outcome
from bulkleads.token import Token

BASE = "https://api.example.test"


def target(**options: object) -> CrmV3Target:
    return CrmV3Target(BASE, Token("pat-secret"), "contacts", **options)  # type: ignore[arg-type]


def body_of(request: httpx.Request) -> dict:
    return json.loads(request.content)


def test_the_paths_follow_the_version_and_the_object() -> None:
    legacy = CrmV3Target(BASE, Token("t"), "deals", version="v3")
    assert legacy.path == "/crm/v3/objects/deals/batch/update"
    assert legacy.read_path.endswith("/deals/batch/read")
    assert legacy.upsert_path.endswith("/deals/batch/upsert")
    assert legacy.archive_path.endswith("/deals/batch/archive")
    assert target().path == "/crm/objects/2026-09/contacts/batch/update"


def test_upsert_goes_by_the_match_property_and_maps_created_ids_by_key() -> None:
    """`--create`: each input carries the key as id and idProperty; the answer names records by
    that property's value (emails compared ignoring case); one it does not name stays
    unconfirmed, never created."""
    upsert = target(id_property="email")
    bundles = [Bundle("a@x.io", {"city": "A"}, 1, 0), Bundle("b@x.io", {"city": "B"}, 2, 0)]
    request = upsert.build_create(bundles)
    assert request.url.path == "/crm/objects/2026-09/contacts/batch/upsert"
    assert body_of(request)["inputs"][0] == {
        "id": "a@x.io",
        "idProperty": "email",
        "properties": {"city": "A"},
        "objectWriteTraceId": "a@x.io",
    }
    answer = {"results": [{"id": "77", "new": True, "properties": {"email": "A@X.IO"}}]}
    outcome, named = upsert.classify_create(httpx.Response(200, json=answer), bundles)
    assert outcome.kind == "ok"
    assert (named["a@x.io"].kind, named["a@x.io"].record_id) == ("ok", "77")
    assert named["b@x.io"].kind == "unconfirmed"
    refused, none = upsert.classify_create(httpx.Response(400, json={"message": "x"}), bundles)
    assert refused.kind == "final" and none == {}


def test_archive_sends_the_ids_and_any_2xx_archives_the_batch() -> None:
    bundles = [Bundle("a@x.io", {}, 1, 0, record_id="77"), Bundle("9", {}, 2, 0)]
    request = target().build_archive(bundles)
    assert body_of(request) == {"inputs": [{"id": "77"}, {"id": "9"}]}
    assert target().classify_archive(httpx.Response(204), bundles) == (
        target().outcome(httpx.Response(204)),
        {},
    )


def test_a_write_by_the_match_property_counts_its_results() -> None:
    """Records written by the property (no read gave their ids) are confirmed only when the
    answer holds as many results as records sent; fewer confirms none."""
    by_email = target(id_property="email")
    bundles = [Bundle("a@x.io", {"city": "A"}, 1, 0), Bundle("b@x.io", {"city": "B"}, 2, 0)]
    sent = body_of(by_email.build(bundles))["inputs"]
    assert [i["idProperty"] for i in sent] == ["email", "email"]
    both = {"results": [{"id": "1"}, {"id": "2"}]}
    _, named = by_email.classify(httpx.Response(200, json=both), bundles)
    assert named == {}
    one = {"results": [{"id": "1"}]}
    _, named = by_email.classify(httpx.Response(200, json=one), bundles)
    assert {k: o.kind for k, o in named.items()} == {
        "a@x.io": "unconfirmed",
        "b@x.io": "unconfirmed",
    }


def test_a_207_names_failed_records_by_trace_id_or_record_id() -> None:
    """An error's objectWriteTraceId (our key) or its context ids (a record id we sent by) fail
    that record with the error's category and message; the others are confirmed by id."""
    bundles = [
        Bundle("a@x.io", {"city": "A"}, 1, 0, record_id="1"),
        Bundle("b@x.io", {"city": "B"}, 2, 0, record_id="2"),
        Bundle("c@x.io", {"city": "C"}, 3, 0, record_id="3"),
    ]
    answer = {
        "results": [{"id": "3"}],
        "errors": [
            {"category": "VALIDATION_ERROR", "message": "bad", "objectWriteTraceId": "a@x.io"},
            {"category": "OBJECT_NOT_FOUND", "message": "gone", "context": {"ids": ["2"]}},
        ],
    }
    outcome, named = target(id_property="email").classify(httpx.Response(207, json=answer), bundles)
    assert outcome.kind == "ok"
    assert named["a@x.io"].reason == "VALIDATION_ERROR: bad"
    assert named["b@x.io"].reason == "OBJECT_NOT_FOUND: gone"
    assert "c@x.io" not in named


def test_a_read_by_a_unique_property_maps_results_back_and_not_found_is_no_failure() -> None:
    by_email = target(id_property="email")
    bundles = [Bundle("a@x.io", {"city": "X"}, 1, 0), Bundle("z@x.io", {"city": "Y"}, 2, 0)]
    answer = {
        "results": [{"id": "5", "properties": {"email": "A@x.io", "city": "Old"}}],
        "errors": [{"category": "OBJECT_NOT_FOUND", "context": {"ids": ["z@x.io"]}}],
    }
    outcome, found = by_email.classify_read(httpx.Response(207, json=answer), bundles)
    assert outcome.kind == "ok"
    assert found["a@x.io"].record_id == "5"
    assert (found["a@x.io"].values or {}).get("city") == "Old"
    assert "z@x.io" not in found
    failing = {"errors": [{"category": "INTERNAL", "message": "m", "context": {"ids": ["z@x.io"]}}]}
    _, found = by_email.classify_read(httpx.Response(207, json=failing), bundles)
    assert found["z@x.io"] == Outcome("final", 207, "INTERNAL: m")
    refused, nothing = by_email.classify_read(httpx.Response(429), bundles)
    assert refused.kind == "retry" and nothing == {}


def test_a_refusal_names_a_record_by_its_value_or_by_the_property() -> None:
    assert Refusal("stage", "vip").refuses({"stage": "vip"})
    assert not Refusal("stage", "vip").refuses({"stage": "customer"})
    assert Refusal("tags", "b").refuses({"tags": "a;b"})  # a checkbox's values
    assert not Refusal("stage", "vip").refuses({"city": "vip"})
    assert Refusal("colour", None).refuses({"colour": "anything"})


def test_a_400_for_one_record_is_final_and_for_several_splits() -> None:
    one = [Bundle("1", {"city": "A"}, 1, 0)]
    outcome, named = target().classify(httpx.Response(400, json={"message": "no"}), one)
    assert outcome.kind == "final" and named == {}
    several = [*one, Bundle("2", {"city": "B"}, 2, 0)]
    outcome, named = target().classify(httpx.Response(400, json={"message": "no"}), several)
    assert outcome.kind == "split" and named == {}
    for status, kind in ((429, "retry"), (500, "retry"), (401, "auth")):
        assert target().classify(httpx.Response(status), several)[0].kind == kind


def test_the_batch_size_is_1_to_100() -> None:
    assert target(batch_size=1).batch_size == 1 and target(batch_size=100).batch_size == 100
    for size in (0, 101):
        with pytest.raises(ValueError, match="1 to 100"):
            target(batch_size=size)


def test_an_answer_without_results_leaves_every_record_unconfirmed_with_its_status() -> None:
    """A 2xx that names nothing written: every record unconfirmed, the status kept; an error
    item that is not an object is passed over, the next one still read."""
    bundles = [Bundle("1", {"city": "A"}, 1, 0), Bundle("2", {"city": "B"}, 2, 0)]
    answer = {"errors": ["junk", {"message": "no", "context": {"ids": ["2"]}}]}
    outcome, named = target().classify(httpx.Response(200, json=answer), bundles)
    assert outcome.kind == "ok"
    assert (named["1"].kind, named["1"].status) == ("unconfirmed", 200)
    assert "without saying which records it updated" in (named["1"].reason or "")
    assert (named["2"].kind, named["2"].reason) == ("final", "no")


def test_a_target_shows_where_it_writes() -> None:
    assert repr(target()) == "CrmV3Target('https://api.example.test', 'contacts', batch_size=100)"


def test_a_read_by_a_property_keeps_its_case_and_passes_over_what_names_no_key() -> None:
    """Only emails compare ignoring case; a result that is not an object, has no properties,
    no match value or a value no bundle has is passed over, and the next one still read."""
    by_ext = target(id_property="ext_id")
    bundles = [Bundle("Ab-1", {"city": "X"}, 1, 0), Bundle("ab-2", {"city": "Y"}, 2, 0)]
    answer = {
        "results": [
            "junk",
            {"id": "4"},
            {"id": "5", "properties": {"city": "none"}},
            {"id": "6", "properties": {"ext_id": "AB-2", "city": "upper"}},
            {"id": "7", "properties": {"ext_id": "Ab-1", "city": "Old"}},
        ]
    }
    outcome, found = by_ext.classify_read(httpx.Response(200, json=answer), bundles)
    assert outcome.kind == "ok"
    assert list(found) == ["Ab-1"]
    assert (found["Ab-1"].kind, found["Ab-1"].status, found["Ab-1"].record_id) == ("ok", 200, "7")


def test_a_400_for_several_fails_the_records_it_names_with_its_reason_and_splits() -> None:
    """The error names record 2 (by its id): that one is final, with the 400's reason; the
    batch's own outcome is a split carrying the same status and reason."""
    several = [Bundle("1", {"city": "A"}, 1, 0), Bundle("2", {"city": "B"}, 2, 0)]
    body = {"category": "VALIDATION_ERROR", "message": "bad", "context": {"ids": ["2"]}}
    response = httpx.Response(400, json=body)
    outcome, named = target().classify(response, several)
    reason = target().outcome(response).reason
    assert outcome == Outcome("split", 400, reason) and reason
    assert named == {"2": Outcome("final", 400, "VALIDATION_ERROR: bad")}


def test_a_refused_value_fails_only_the_records_sending_it_with_the_400s_reason() -> None:
    """A finding without a name is passed over; a property refused as such and a quoted
    value are both read, in any order."""
    findings = [
        {"error": "INVALID_OPTION", "message": "'x' was not one of the allowed options"},
        {"name": "colour", "error": "READ_ONLY_VALUE", "message": "read only"},
        {"name": "stage", "error": "INVALID_OPTION"},
        {"name": "stage", "error": "INVALID_OPTION", "message": "'vip' was not one of ..."},
    ]
    body = {
        "category": "VALIDATION_ERROR",
        "message": f"Property values were not valid: {json.dumps(findings)}",
    }
    bundles = [
        Bundle("1", {"stage": "vip"}, 1, 0),
        Bundle("2", {"stage": "customer"}, 2, 0),
        Bundle("3", {"colour": "red"}, 3, 0),
        Bundle("4", {"stage": "x"}, 4, 0),
    ]
    response = httpx.Response(400, json=body)
    outcome, named = target().classify(response, bundles)
    reason = target().outcome(response).reason
    assert outcome.kind == "split"
    assert named == {"1": Outcome("final", 400, reason), "3": Outcome("final", 400, reason)}
    assert target().classify(httpx.Response(400, json={"category": "X"}), bundles)[1] == {}


def test_a_2xx_confirms_with_its_status_and_says_why_a_record_is_unconfirmed() -> None:
    bundles = [Bundle("1", {"city": "A"}, 1, 0), Bundle("2", {"city": "B"}, 2, 0)]
    outcome, named = target().classify(
        httpx.Response(200, json={"results": [{"id": "1"}]}), bundles
    )
    assert outcome == Outcome("ok", 200)
    assert named == {
        "2": Outcome(
            "unconfirmed",
            200,
            "HubSpot answered 200 but did not name this record among those updated",
        )
    }
    outcome, _ = target().classify(httpx.Response(204), bundles)
    assert outcome == Outcome("ok", 204)


def test_an_upsert_answer_names_records_by_key_errors_included() -> None:
    """Errors name failed records by trace id; a result for a key not sent, or without
    properties, names nobody; results that are not a list name nobody either; an error
    without a message says "refused"."""
    upsert = target(id_property="email")
    bundles = [Bundle(k, {"city": "A"}, i, 0) for i, k in enumerate(("a@x.io", "b@x.io", "c@x.io"))]
    answer = {
        "results": [
            {"id": "8"},
            {"id": "9", "properties": {"email": "z@x.io"}},
            {"id": "10", "properties": {"email": "b@x.io"}},
            {"id": "11", "properties": {"email": "a@x.io"}},
        ],
        "errors": [
            {"category": "VALIDATION_ERROR", "objectWriteTraceId": "a@x.io"},
            {"message": "other", "objectWriteTraceId": "q@x.io"},
        ],
    }
    outcome, named = upsert.classify_create(httpx.Response(207, json=answer), bundles)
    assert outcome == Outcome("ok", 207)
    assert named == {
        "a@x.io": Outcome("final", 207, "VALIDATION_ERROR: refused"),
        "b@x.io": Outcome("ok", 207, record_id="10"),
        "c@x.io": Outcome(
            "unconfirmed",
            207,
            "HubSpot answered 207 without naming this record among those written",
        ),
    }
    _, named = upsert.classify_create(httpx.Response(200, json={"results": 5}), bundles)
    assert {o.kind for o in named.values()} == {"unconfirmed"}


def test_a_read_of_a_stage_asks_for_the_records_pipeline_too() -> None:
    """A deal's or ticket's stage is checked against its record's pipeline: read beside it."""
    bundles = [Bundle("1", {"dealstage": "closedwon"}, 1, 0), Bundle("2", {"amount": "5"}, 2, 0)]
    deals = CrmV3Target(BASE, Token("t"), "deals")
    assert body_of(deals.build_read(bundles))["properties"] == ["amount", "dealstage", "pipeline"]
    assert body_of(deals.build_read(bundles[1:]))["properties"] == ["amount"]
    tickets = CrmV3Target(BASE, Token("t"), "tickets")
    staged = [Bundle("3", {"hs_pipeline_stage": "4"}, 1, 0)]
    assert body_of(tickets.build_read(staged))["properties"] == ["hs_pipeline", "hs_pipeline_stage"]
    contacts = [Bundle("4", {"dealstage": "x"}, 1, 0)]
    assert body_of(target().build_read(contacts))["properties"] == ["dealstage"]
