"""Association requests per 100 links, and utilization (issue 21).

Against the sandbox at HubSpot's Free limit (100 requests per 10 s), 5,000 seeded contacts and
500 companies; every row links its contact to one company:

- by id: the file carries both records' ids (no property changes: links only);
- by domain: contacts by email, companies by domain (found by search, paced on its own), and a
  property change on every contact;
- by domain, a fifth already linked: the same after 1,000 of the links were made by another
  client (read, counted, not sent), whose requests have left the window when the run starts;
- to a custom object by id: the same links by id to 500 cars (``sample_data/cars_schema.json``),
  which the run looks up in the portal's schemas first (one request) and addresses by type id.

Requests are counted per phase from the job file's timeline (``requests.phase``): finding
(batch read or search), reading links, linking; and in all, as the sandbox saw them. Run:
``python bench/associations.py`` (after ``make install``).
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

from pacing import run_update, start_sandbox, stop

CONTACTS, COMPANIES = 5000, 500
CARS_SCHEMA = Path(__file__).resolve().parent.parent / "sample_data" / "cars_schema.json"
LINK_PHASES = ("finding", "reading links", "linking")


def _stats(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/__sandbox/stats") as answer:  # noqa: S310 - loopback
        return json.load(answer)


def _seed(folder: Path) -> tuple[Path, Path]:
    contacts = folder / "contacts.json"
    contacts.write_text(
        json.dumps(
            [{"id": str(1 + i), "email": f"c{i}@example.com", "city": ""} for i in range(CONTACTS)]
        )
    )
    companies = folder / "companies.json"
    companies.write_text(
        json.dumps([{"id": str(90001 + i), "domain": f"co{i}.io"} for i in range(COMPANIES)])
    )
    return contacts, companies


def _link_first(url: str, count: int) -> None:
    """Another client's links, made before the run."""
    for start in range(0, count, 100):
        inputs = [
            {"from": {"id": str(1 + i)}, "to": {"id": str(90001 + i % COMPANIES)}}
            for i in range(start, min(start + 100, count))
        ]
        request = urllib.request.Request(  # noqa: S310 - loopback
            f"{url}/crm/associations/2026-09/contacts/companies/batch/associate/default",
            data=json.dumps({"inputs": inputs}).encode(),
            headers={"Authorization": "Bearer sandbox-token", "Content-Type": "application/json"},
        )
        urllib.request.urlopen(request).close()  # noqa: S310


def scenario(name: str, by_domain: bool, already: int, custom: bool = False) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        contacts, companies = _seed(folder)
        leads = folder / "links.csv"
        extra: list[str] = []
        if custom:  # the companies' ids, as cars
            cars = folder / "cars.json"
            cars.write_text(companies.read_text().replace('"domain"', '"vin"'))
            extra = ["--crm-schema", str(CARS_SCHEMA), "--crm-seed", f"cars={cars}"]
            rows = [f"{1 + i},{90001 + i % COMPANIES}" for i in range(CONTACTS)]
            leads.write_text("id,associate:cars\n" + "\n".join(rows) + "\n")
        elif by_domain:
            rows = [f"c{i}@example.com,Town{i},co{i % COMPANIES}.io" for i in range(CONTACTS)]
            leads.write_text("email,city,associate:companies\n" + "\n".join(rows) + "\n")
        else:
            rows = [f"{1 + i},{90001 + i % COMPANIES}" for i in range(CONTACTS)]
            leads.write_text("id,associate:companies\n" + "\n".join(rows) + "\n")
        proc, url = start_sandbox(
            "--limit", "100", "--window", "10",
            "--crm-seed", f"contacts={contacts}", "--crm-seed", f"companies={companies}", *extra,
        )  # fmt: skip
        try:
            _link_first(url, already)
            if already:  # let the other client's requests leave the window: our run alone
                time.sleep(10.5)
            before = sum(_stats(url)["requests"].values())
            flags = ["--api", "crm-v3", "--object", "contacts"]
            if by_domain:
                flags += ["--match", "email", "--associate-by", "companies=domain"]
            summary, _ = run_update(folder, leads, url, *flags)
            stats = _stats(url)
        finally:
            stop(proc)
        (job,) = (folder / "state").glob("*.sqlite")
        with sqlite3.connect(job) as db:
            phases = Counter(dict(db.execute("SELECT phase, count(*) FROM requests GROUP BY 1")))
    made = stats["links_added"] - already
    link_requests = sum(phases[p] for p in LINK_PHASES)
    return {
        "scenario": name,
        "links": CONTACTS,
        "made": made,
        "already_there": already,
        "requests_by_phase": dict(phases),
        "link_requests_per_100_links": round(100 * link_requests / CONTACTS, 2),
        "all_requests": sum(stats["requests"].values()) - before,
        "utilization": summary.get("utilization"),
        "429s": stats["requests"].get("429", 0),
        "seconds": summary.get("elapsed_seconds"),
    }


def main() -> None:
    rows = [
        scenario("by id, links only", by_domain=False, already=0),
        scenario("contacts by email, companies by domain", by_domain=True, already=0),
        scenario("by domain, a fifth already linked", by_domain=True, already=CONTACTS // 5),
        scenario("to a custom object by id", by_domain=False, already=0, custom=True),
    ]
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
