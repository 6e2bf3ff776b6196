"""Associations from the same file (``associate:OBJECT`` columns), end to end: the real CLI
against the real sandbox."""

from __future__ import annotations

import json
import signal
import subprocess
from collections import Counter
from pathlib import Path

import httpx

from tests.conftest import BULKLEADS, bare_env, read_report, run_cli

KNOWN, NEW, COMPANIES = 800, 200, 50
CRM = ["--api", "crm-v3", "--object", "contacts"]


def _portal(tmp_path: Path, sandbox):
    """800 contacts, 50 companies (d1.io ... d50.io) and two that share dup.io."""
    contacts = [
        {"id": str(i), "email": f"c{i}@x.io", "jobtitle": "Old"} for i in range(1, KNOWN + 1)
    ]
    companies = [{"id": str(5000 + i), "domain": f"d{i}.io"} for i in range(1, COMPANIES + 1)]
    companies += [{"id": "7001", "domain": "dup.io"}, {"id": "7002", "domain": "dup.io"}]
    (tmp_path / "contacts.json").write_text(json.dumps(contacts))
    (tmp_path / "companies.json").write_text(json.dumps(companies))
    return sandbox(
        "--limit", "1000", "--window", "10",
        "--crm-seed", f"contacts={tmp_path / 'contacts.json'}",
        "--crm-seed", f"companies={tmp_path / 'companies.json'}",
        seed=None,
    )  # fmt: skip


def _domains(i: int) -> str:
    """Row i's cell: its company's domain (d51-d59 are unknown), written as users do; every
    97th names the shared domain; every 10th a second company too."""
    if i % 97 == 0:
        return "dup.io"
    cell = f"d{i % 60 or 60}.io" if i % 3 else f"https://www.D{i % 60 or 60}.io/about"
    return cell + (f";d{(i + 1) % 50 + 1}.io" if i % 10 == 0 else "")


def _links(box) -> list[list[str]]:
    return httpx.get(f"{box.url}/__sandbox/associations/contacts/companies").json()


def test_a_file_updates_creates_and_links_by_domain_and_undo_removes_only_what_it_added(
    tmp_path: Path, sandbox
) -> None:
    """1,000 contacts keyed by email (200 new, created) linked to companies by domain: the
    links already there are counted, never sent; unknown domains are not found and a domain
    two companies hold fails naming both; exactly the missing links are made, and undo
    removes exactly those (the portal's links, records and values are as before)."""
    box = _portal(tmp_path, sandbox)
    api = f"{box.url}/crm/associations/2026-09/contacts/companies/batch/associate/default"
    already = [{"from": {"id": str(i)}, "to": {"id": str(5000 + i % 60)}} for i in range(1, 41)]
    already = [
        a for a in already if int(a["to"]["id"]) <= 5000 + COMPANIES and a["to"]["id"] != "5000"
    ]
    headers = {"Authorization": "Bearer sandbox-token"}
    assert httpx.post(api, json={"inputs": already}, headers=headers).status_code == 200
    links_before = _links(box)
    records_before = httpx.get(f"{box.url}/__sandbox/objects/contacts").json()

    rows = ["email,jobtitle,associate:companies"]
    rows += [f"c{i}@x.io,CTO,{_domains(i)}" for i in range(1, KNOWN + NEW + 1)]
    (tmp_path / "contacts.csv").write_text("\n".join(rows) + "\n")
    args = [*CRM, "--base-url", box.url, "--match", "email", "--create"]
    args += ["--associate-by", "companies=domain"]
    ran = run_cli("update", str(tmp_path / "contacts.csv"), *args, cwd=tmp_path)
    assert ran.code == 1, ran.stderr  # unknown domains and the shared one: not all linked
    report = read_report(tmp_path / "contacts.report.csv")
    assert Counter(r["outcome"] for r in report) == {"updated": KNOWN, "created": NEW}

    ids = {r["email"]: r["record_id"] for r in report}
    expected: set[tuple[str, str]] = set()
    words: Counter[str] = Counter()
    for i in range(1, KNOWN + NEW + 1):
        for domain in (
            _domains(i).lower().replace("https://www.", "").replace("/about", "").split(";")
        ):
            number = int(domain[1:-3]) if domain != "dup.io" else 0
            pair = (ids[f"c{i}@x.io"], str(5000 + number))
            if domain == "dup.io":
                words["failed"] += 1
            elif number > COMPANIES:
                words["not found"] += 1
            elif [pair[0], pair[1]] in links_before:
                words["already there"] += 1
            else:
                words["added"] += 1
                expected.add(pair)
    cells = Counter(
        part.split(": ", 1)[1].split(" (")[0]
        for r in report
        for part in r["associations"].split("; ")
    )
    assert cells == words
    assert "2 companies have domain dup.io (7001, 7002)" in next(
        r["associations"] for r in report if r["email"] == "c97@x.io"
    )
    assert sorted(map(tuple, _links(box))) == sorted({*map(tuple, links_before), *expected})
    stats = box.stats()
    assert stats["links_added"] == len(already) + len(expected)  # none sent twice
    assert stats["searches"] == 1  # 61 distinct domains, 100 a request

    undone = run_cli("undo", str(tmp_path / "contacts.report.csv"), cwd=tmp_path)
    assert undone.code == 0, undone.stderr
    created = {r["record_id"] for r in report if r["outcome"] == "created"}
    unlinks = [pair for pair in expected if pair[0] not in created]  # the created: archived
    assert f"{len(unlinks)} links it added to remove" in undone.stderr
    assert _links(box) == links_before
    assert httpx.get(f"{box.url}/__sandbox/objects/contacts").json() == records_before


def test_links_stopped_by_the_daily_limit_resume_where_they_stopped(
    tmp_path: Path, sandbox
) -> None:
    """A run stopped mid-links (the portal's daily limit) says which are not sent yet and
    exits 3; the same command finishes them, sending none twice."""
    box = _portal(tmp_path, sandbox)
    rows = ["email,associate:companies"] + [f"c{i}@x.io,{5000 + i % 50 + 1}" for i in range(1, 501)]
    (tmp_path / "links.csv").write_text("\n".join(rows) + "\n")
    box.configure(daily=10)  # properties, 5 reads, 1 links read, then 3 of the 5 link writes
    command = [
        "update",
        str(tmp_path / "links.csv"),
        *CRM,
        "--base-url",
        box.url,
        "--match",
        "email",
    ]
    stopped = run_cli(*command, cwd=tmp_path)
    assert stopped.code == 3, stopped.stderr
    cells = Counter(
        r["associations"].split(": ", 1)[1].split(" (")[0]
        for r in read_report(tmp_path / "links.report.csv")
    )
    assert cells["added"] == 300 and cells["not sent yet"] == 200, cells
    # every record is written, its links are not: the job is not done, and prune keeps it
    (job,) = json.loads(run_cli("jobs", "--json", cwd=tmp_path).stdout)
    assert job["status"] == "deferred" and job["updated"] == 0 and job["skipped"] == 500
    assert job["links"] == "300 added, 200 not sent yet"
    pruned = run_cli("jobs", "prune", "--older-than", "0m", cwd=tmp_path)
    assert "pruned 0 jobs" in pruned.stdout, pruned.stdout
    box.configure(reset_daily=True)
    finished = run_cli(*command, cwd=tmp_path)
    assert finished.code == 0, finished.stderr
    assert box.stats()["links_added"] == 500 and len(_links(box)) == 500


def test_link_columns_that_cannot_work_stop_before_any_write(tmp_path: Path, sandbox) -> None:
    """An object the record cannot link to (did you mean), a key that is not unique, a
    Leads v1 file with a link column, a cell that is no id: refused before anything is
    written."""
    box = _portal(tmp_path, sandbox)
    leads = tmp_path / "c.csv"
    leads.write_text("email,associate:compnies\nc1@x.io,5001\n")
    base = [*CRM, "--base-url", box.url, "--match", "email"]
    typo = run_cli("update", str(leads), *base, cwd=tmp_path)
    assert typo.code == 2 and "did you mean associate:companies" in typo.stderr
    leads.write_text("email,associate:companies\nc1@x.io,acme\n")
    by_name = run_cli("update", str(leads), *base, "--associate-by", "companies=city", cwd=tmp_path)
    assert by_name.code == 2 and "city is not a unique property" in by_name.stderr
    misspelt = run_cli(
        "update", str(leads), *base, "--associate-by", "companies=domian", cwd=tmp_path
    )
    assert misspelt.code == 2 and "(did you mean domain?)" in misspelt.stderr
    not_id = run_cli("update", str(leads), *base, cwd=tmp_path)
    assert not_id.code == 1 and "'acme' is not a record id" in not_id.stderr + str(
        read_report(tmp_path / "c.report.csv")
    )
    v1 = tmp_path / "v1.csv"
    v1.write_text("guid,associate:companies\nabc,5001\n")
    leads_v1 = run_cli("update", str(v1), "--base-url", box.url, cwd=tmp_path)
    assert leads_v1.code == 2 and "associate: columns link CRM records" in leads_v1.stderr
    assert box.stats()["crm_applied_total"] == 0 and box.stats()["links_added"] == 0


def test_a_labeled_association_round_trips_and_undo_keeps_what_was_there(
    tmp_path: Path, sandbox
) -> None:
    """--association-label resolves the label to its type id once (an unknown one is exit 2
    with did-you-mean, nothing sent); links get that type (a pair already linked without it
    takes it too), and undo removes the new pairs whole and only the label from the pair
    that was there before."""
    box = _portal(tmp_path, sandbox)
    root = f"{box.url}/crm/associations/2026-09/contacts/companies"
    headers = {"Authorization": "Bearer sandbox-token"}
    before = {"inputs": [{"from": {"id": "1"}, "to": {"id": "5001"}}]}
    assert httpx.post(f"{root}/batch/associate/default", json=before, headers=headers).is_success
    (tmp_path / "l.csv").write_text("id,associate:companies\n1,5001\n2,5002\n3,5003\n")
    args = ["update", str(tmp_path / "l.csv"), *CRM, "--base-url", box.url]

    wrong = run_cli(*args, "--association-label", "companies=Biling contact", cwd=tmp_path)
    assert wrong.code == 2 and "did you mean 'Billing contact'" in wrong.stderr
    assert box.stats()["links_added"] == 1 and box.stats()["labels_added"] == 0

    ran = run_cli(*args, "--association-label", "companies=billing CONTACT", cwd=tmp_path)
    assert ran.code == 0, ran.stderr

    def types() -> dict[str, list[int]]:
        read = {"inputs": [{"id": str(i)} for i in (1, 2, 3)]}
        answer = httpx.post(f"{root}/batch/read", json=read, headers=headers).json()
        return {
            r["from"]["id"]: sorted(t["typeId"] for t in r["to"][0]["associationTypes"])
            for r in answer["results"]
        }

    assert types() == {"1": [47, 279], "2": [47], "3": [47]}  # 47: "Billing contact"
    assert box.stats()["labels_added"] == 3

    undone = run_cli("undo", str(tmp_path / "l.report.csv"), cwd=tmp_path)
    assert undone.code == 0, undone.stderr
    assert types() == {"1": [279]}  # the pair that was there stays, as it was


def test_retry_sends_links_that_failed_on_a_passing_fault(tmp_path: Path, sandbox) -> None:
    """Links whose requests met only 5xx fail with the reason (exit 1); ``bulkleads retry``
    sends them again once the portal is well, and every link is made once."""
    box = _portal(tmp_path, sandbox)
    (tmp_path / "f.csv").write_text(
        "id,associate:companies\n" + "".join(f"{i},{5000 + i}\n" for i in range(1, 21))
    )
    box.configure(fail_rate=1.0, fail_definitions=False)  # the links fail, not the plan
    args = ["update", str(tmp_path / "f.csv"), *CRM, "--base-url", box.url, "--no-backup"]
    failed = run_cli(*args, "--max-attempts", "1", cwd=tmp_path)
    assert failed.code == 1, failed.stderr
    report = read_report(tmp_path / "f.report.csv")
    assert all("failed (reading its links: " in r["associations"] for r in report)
    box.configure(fail_rate=0.0)
    retried = run_cli("retry", str(tmp_path / "f.report.csv"), cwd=tmp_path)
    assert retried.code == 0, retried.stderr
    assert {r["associations"].split(": ")[1] for r in read_report(tmp_path / "f.report.csv")} == {
        "added"
    }
    assert box.stats()["links_added"] == 20 and len(_links(box)) == 20


def test_links_found_before_a_signal_are_made_by_the_rerun(tmp_path: Path, sandbox) -> None:
    """Ctrl-C while companies are still being found by domain (10 searches, stopped after 2)
    leaves the links found so far with their target known; the same command makes every
    link, where it used to leave them "not sent yet" for good."""
    count = 1000
    contacts = [{"id": str(i), "email": f"c{i}@x.io"} for i in range(1, count + 1)]
    companies = [{"id": str(5000 + i), "domain": f"d{i}.io"} for i in range(1, count + 1)]
    (tmp_path / "contacts.json").write_text(json.dumps(contacts))
    (tmp_path / "companies.json").write_text(json.dumps(companies))
    box = sandbox(
        "--limit", "1000", "--window", "10", "--latency-ms", "100",
        "--crm-seed", f"contacts={tmp_path / 'contacts.json'}",
        "--crm-seed", f"companies={tmp_path / 'companies.json'}",
        seed=None,
    )  # fmt: skip
    rows = ["email,associate:companies"] + [f"c{i}@x.io,d{i}.io" for i in range(1, count + 1)]
    (tmp_path / "links.csv").write_text("\n".join(rows) + "\n")
    command = ["update", str(tmp_path / "links.csv"), *CRM, "--base-url", box.url]
    command += ["--match", "email", "--associate-by", "companies=domain"]
    proc = subprocess.Popen(
        [BULKLEADS, *command], cwd=tmp_path, env=bare_env(), stderr=subprocess.PIPE, text=True
    )
    box.wait_for(2, proc, "searches")
    proc.send_signal(signal.SIGINT)
    _, said = proc.communicate(timeout=60)
    assert proc.returncode == 3, said
    assert box.stats()["searches"] < 10, "stopped while still finding"
    for _ in range(2):  # the same command: the second finds nothing left to do
        again = run_cli(*command, cwd=tmp_path)
        assert again.code == 0, again.stderr
    assert box.stats()["links_added"] == count and len(_links(box)) == count
    cells = Counter(
        r["associations"].split(": ", 1)[1].split(" (")[0]
        for r in read_report(tmp_path / "links.report.csv")
    )
    assert cells == {"added": count}


def test_the_plan_counts_the_requests_of_the_links(tmp_path: Path, sandbox) -> None:
    """A migration's plan counts finding, reading links and linking beside the records'
    reads and writes: what it promises is what the run makes (where it said 30 + 30 for a
    run of 90)."""
    box = _portal(tmp_path, sandbox)
    rows = ["email,jobtitle,associate:companies"]
    rows += [f"c{i}@x.io,CTO,d{i % 50 + 1}.io" for i in range(1, 301)]
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    args = ["update", str(tmp_path / "m.csv"), *CRM, "--base-url", box.url, "--match", "email"]
    args += ["--associate-by", "companies=domain", "--log-format", "json"]
    ran = run_cli(*args, cwd=tmp_path)
    assert ran.code == 0, ran.stderr
    events = [json.loads(line) for line in ran.stderr.splitlines()]
    plan = next(e for e in events if e["event"] == "plan")
    done = next(e for e in events if e["event"] == "summary")
    assert plan["link_requests"] == 1 + 1 + 3  # 50 domains, 300 records' links, 300 links
    assert "plus 5 for links (1 finding, 1 reading links, 3 linking)" in plan["message"]
    promised = plan["requests"] + plan["reads"] + plan["link_requests"]
    assert done["requests"] - done["requests_before_sending"] == promised


def test_associate_by_without_its_column_names_the_map_that_makes_one(
    tmp_path: Path, sandbox
) -> None:
    """--associate-by companies=domain on a file whose domains sit in `company_domain` says
    how to make it the link column, then that command links (it said only that no column
    was there)."""
    box = _portal(tmp_path, sandbox)
    (tmp_path / "m.csv").write_text("email,company_domain\nc1@x.io,d1.io\nc2@x.io,d2.io\n")
    args = ["update", str(tmp_path / "m.csv"), *CRM, "--base-url", box.url, "--match", "email"]
    args += ["--associate-by", "companies=domain"]
    refused = run_cli(*args, cwd=tmp_path)
    assert refused.code == 2
    assert '--map "company_domain=associate:companies"' in refused.stderr, refused.stderr
    mapped = run_cli(*args, "--map", "company_domain=associate:companies", cwd=tmp_path)
    assert mapped.code == 0, mapped.stderr
    assert box.stats()["links_added"] == 2


def test_a_company_made_moments_ago_is_found_by_domain_once_search_catches_up(
    tmp_path: Path, sandbox
) -> None:
    """HubSpot's search is eventually consistent: companies one job just created are not
    found by domain yet. Their links are ``not found`` (exit 1, never guessed), and
    ``retry --all-failed`` links them once search finds them."""
    unique = [{"name": "erp_id", "type": "string", "fieldType": "text", "hasUniqueValue": True}]
    (tmp_path / "props.json").write_text(json.dumps(unique))
    (tmp_path / "contacts.json").write_text(json.dumps([{"id": "1"}, {"id": "2"}]))
    box = sandbox(
        "--crm-properties", f"companies={tmp_path / 'props.json'}",
        "--crm-seed", f"contacts={tmp_path / 'contacts.json'}", seed=None,
    )  # fmt: skip
    box.configure(search_lag=3600)  # nothing made from now on is found by search for an hour
    (tmp_path / "companies.csv").write_text("erp_id,domain\nE1,new1.io\nE2,new2.io\n")
    made = run_cli(
        "update", "companies.csv", "--api", "crm-v3", "--object", "companies",
        "--match", "erp_id", "--create", "--base-url", box.url, cwd=tmp_path,
    )  # fmt: skip
    assert made.code == 0, made.stderr
    (tmp_path / "c.csv").write_text("id,associate:companies\n1,new1.io\n2,new2.io\n")
    args = [*CRM, "--base-url", box.url, "--associate-by", "companies=domain"]
    linked = run_cli("update", "c.csv", *args, cwd=tmp_path)
    assert linked.code == 1 and box.stats()["links_added"] == 0
    rows = read_report(tmp_path / "c.report.csv")
    assert all("not found" in row["associations"] for row in rows), rows
    box.configure(search_lag=0)  # the index caught up
    retried = run_cli("retry", "c.report.csv", "--all-failed", cwd=tmp_path)
    assert retried.code == 0, retried.stderr
    ids = {r["domain"]: rid for rid, r in box.state_of("companies").items()}
    assert _links(box) == sorted([["1", ids["new1.io"]], ["2", ids["new2.io"]]])
