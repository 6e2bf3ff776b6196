"""Deal and ticket stages belong to pipelines: a row that names its pipeline has its stage
checked against that pipeline's stages and its label made that pipeline's stage id, before
the first request; the sandbox refuses a stage of another pipeline, as HubSpot does."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from bulkleads.fields import FieldError
from bulkleads.hubspot.pipelines import Pipeline, _parse, pipelines_path, stage_check
from bulkleads.sandbox import SANDBOX_TOKEN
from tests.conftest import SAMPLE, read_report, run_cli

PIPELINES = tuple(
    p for item in json.loads((SAMPLE / "deal_pipelines.json").read_text()) if (p := _parse(item))
)
check = stage_check(PIPELINES, "pipeline", "dealstage")


def test_pipelines_are_read_in_their_stages_order() -> None:
    default, enterprise = PIPELINES
    assert default == Pipeline(
        "default",
        "Sales Pipeline",
        (
            ("appointmentscheduled", "Appointment scheduled"),
            ("closedwon", "Closed won"),
            ("closedlost", "Closed lost"),
        ),
    )
    assert enterprise.stage("closed WON") == "102" and enterprise.stage("closedwon") is None
    assert pipelines_path("2026-09", "deals") == "/crm/pipelines/2026-09/deals"
    assert pipelines_path("v3", "tickets") == "/crm/v3/pipelines/tickets"


@pytest.mark.parametrize(
    ("fields", "sent"),
    [
        (
            {"pipeline": "default", "dealstage": "Closed won"},
            {"pipeline": "default", "dealstage": "closedwon"},
        ),
        (
            {"pipeline": "Enterprise", "dealstage": "Closed won"},
            {"pipeline": "12345", "dealstage": "102"},
        ),
        # the options made "Closed won" default's id: the row's pipeline takes it back
        (
            {"pipeline": "12345", "dealstage": "closedwon"},
            {"pipeline": "12345", "dealstage": "102"},
        ),
        ({"dealstage": "101"}, {"dealstage": "101"}),  # no pipeline known: HubSpot's check
        ({"dealname": "x"}, {"dealname": "x"}),
    ],
)
def test_a_stage_is_taken_in_the_rows_own_pipeline(fields: dict, sent: dict) -> None:
    assert check(fields, {}) == sent


def test_without_a_pipeline_in_the_row_the_records_own_decides() -> None:
    assert check({"dealstage": "closedwon"}, {"pipeline": "12345"}) == {"dealstage": "102"}
    with pytest.raises(
        FieldError, match=r"'Qualified' \(101\) is not a stage of the pipeline Sales"
    ):
        check({"dealstage": "101"}, {"pipeline": "default", "dealstage": "closedwon"})


def test_a_stage_of_another_pipeline_or_an_unknown_pipeline_is_refused_naming_the_choices() -> None:
    with pytest.raises(FieldError) as other:
        check({"pipeline": "default", "dealstage": "101"}, {"pipeline": "12345"})
    assert str(other.value) == (
        "dealstage: 'Qualified' (101) is not a stage of the pipeline Sales Pipeline (default): "
        "Appointment scheduled (appointmentscheduled), Closed won (closedwon), "
        "Closed lost (closedlost)"
    )
    unknown = r"pipeline: 'Retail' is not one of the pipelines \(Sales Pipeline \(default\); Ent"
    with pytest.raises(FieldError, match=unknown):
        check({"pipeline": "Retail", "dealstage": "101"}, {})


def test_deal_stages_by_pipeline_through_the_cli(tmp_path: Path, sandbox) -> None:
    """Two pipelines: "Closed won" becomes each row's own pipeline's stage; a stage of another
    pipeline is an invalid row, never sent; without a pipeline column, the record's pipeline
    (read with its backup) decides the same; the sandbox refuses a stage of another pipeline
    than the record's, as HubSpot does."""
    deals = tmp_path / "deals.json"
    deals.write_text(
        json.dumps(
            [
                {"id": str(i), "properties": {"dealname": n, "pipeline": p, "dealstage": s}}
                for i, n, p, s in (
                    (1, "A", "default", "appointmentscheduled"),
                    (2, "B", "12345", "101"),
                    (3, "C", "default", "appointmentscheduled"),
                )
            ]
        )
    )
    box = sandbox(
        "--crm-pipelines", f"deals={SAMPLE / 'deal_pipelines.json'}", "--crm-seed", f"deals={deals}"
    )
    (tmp_path / "d.csv").write_text(
        "id,pipeline,dealstage\n1,default,Closed won\n2,Enterprise,Closed won\n"
        "3,Sales Pipeline,Qualified\n"
    )
    deals_flags = ("--api", "crm-v3", "--object", "deals", "--base-url", box.url)
    done = run_cli("update", "d.csv", *deals_flags, cwd=tmp_path)
    assert done.code == 1, done.stderr
    rows = read_report(tmp_path / "d.report.csv")
    assert [r["outcome"] for r in rows] == ["updated", "updated", "invalid"]
    assert (
        "'Qualified' (101) is not a stage of the pipeline Sales Pipeline (default)"
        in rows[2]["error"]
    )
    held = {rid: r["dealstage"] for rid, r in box.state_of("deals").items()}
    assert held == {"1": "closedwon", "2": "102", "3": "appointmentscheduled"}
    # no pipeline column: each stage is taken in the record's own pipeline, as read
    (tmp_path / "s.csv").write_text("id,dealstage\n2,Qualified\n3,Qualified\n1,Closed lost\n")
    staged = run_cli("update", "s.csv", *deals_flags, cwd=tmp_path)
    assert staged.code == 1, staged.stderr
    rows = read_report(tmp_path / "s.report.csv")
    assert [r["outcome"] for r in rows] == ["updated", "invalid", "updated"]
    assert rows[1]["error"].startswith(
        "dealstage: 'Qualified' (101) is not a stage of the pipeline Sales"
    )
    assert rows[1]["error"].endswith("(the record's own pipeline, as read)")
    held = {rid: r["dealstage"] for rid, r in box.state_of("deals").items()}
    assert held == {"1": "closedlost", "2": "101", "3": "appointmentscheduled"}
    url = f"{box.url}/crm/objects/2026-09/deals/batch/update"
    body = {"inputs": [{"id": "3", "properties": {"dealstage": "102"}}]}
    refused = httpx.post(url, json=body, headers={"Authorization": f"Bearer {SANDBOX_TOKEN}"})
    assert (
        refused.status_code == 400
        and "'102' is not a valid stage of pipeline default" in refused.text
    )


def test_the_sandbox_serves_hubspots_default_pipelines(sandbox) -> None:
    box = sandbox()
    auth = {"Authorization": f"Bearer {SANDBOX_TOKEN}"}
    (tickets,) = httpx.get(f"{box.url}/crm/pipelines/2026-09/tickets", headers=auth).json()[
        "results"
    ]
    assert tickets["id"] == "0" and [s["id"] for s in tickets["stages"]] == ["1", "2", "3", "4"]
    (deals,) = httpx.get(f"{box.url}/crm/v3/pipelines/deals", headers=auth).json()["results"]
    assert deals["id"] == "default" and "closedwon" in [s["id"] for s in deals["stages"]]
