"""Read-before-write benchmark: what backups cost, and what skipping saves.

The real CLI against the real sandbox, loopback only, every loop bounded:

- requests per lead with backup on (Leads v1: one read and one write per lead that changes;
  CRM v3: one batch read and one batch update per 100 records), side by side with --no-backup;
- a nightly close where 40 % of the leads are already closed: writes sent against leads that
  change, total requests and wall time, with backup and with --no-backup, in one run.

Run with `make bench-backup`; the figures go to bench/RESULTS.md. Pacing with reads and writes
mixed is measured by bench/pacing.py (its paced scenarios run with backup on).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import httpx
from pacing import run_update, start_sandbox, stop


def seed(folder: Path, keys: list[str], crm: bool, closed: int = 0) -> list[str]:
    """Sandbox flags seeding ``keys``; the first ``closed`` leads are closed already."""
    path = folder / "seed.json"
    if crm:
        path.write_text(json.dumps([{"id": k, "city": "", "lifecyclestage": "lead"} for k in keys]))
        return ["--crm-seed", f"contacts={path}"]
    leads = [
        {
            "guid": k,
            "city": "",
            "closedAt": 1709251200000 if i < closed else 0,
            "isCustomer": i < closed,
        }
        for i, k in enumerate(keys)
    ]
    path.write_text(json.dumps(leads))
    return ["--seed", str(path)]


def measure(name: str, count: int, *, crm: bool, closed: int, flags: tuple[str, ...]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        keys = [str(1000 + i) if crm else f"{i:032x}" for i in range(1, count + 1)]
        limit = ["--limit", "100", "--window", "1"]
        proc, url = start_sandbox(*seed(folder, keys, crm, closed), *limit)
        try:
            leads = folder / "in.csv"
            if crm:
                leads.write_text("id,lifecyclestage\n" + "".join(f"{k},customer\n" for k in keys))
                api = ("--api", "crm-v3", "--object", "contacts")
            else:
                leads.write_text(
                    "guid,closedAt,isCustomer\n" + "".join(f"{k},2024-03-01,yes\n" for k in keys)
                )
                api = ()
            pace = ("--rate", "100", "--rate-window", "1")
            summary, _cpu = run_update(folder, leads, url, *api, *pace, *flags)
            stats = httpx.get(f"{url}/__sandbox/stats").json()
        finally:
            stop(proc)
    writes = stats["crm_applied_total"] if crm else stats["applied_total"]
    requests = summary["requests"]  # the CRM property list is read before, outside these
    unit = 100 if crm else 1  # requests per lead, or per 100 records
    return {
        "scenario": name,
        "leads": count,
        "already": closed,
        "written": writes,
        "reads": stats["reads"],
        "requests": summary["requests"],
        "per_lead" if not crm else "per_100_records": round(requests / count * unit, 3),
        "429s": summary["statuses"].get("429", 0),
        "elapsed_s": summary["elapsed_seconds"],
        "skipped": summary.get("skipped", 0),
    }


def main() -> None:
    rows = [
        measure("leads-v1, backup", 500, crm=False, closed=0, flags=()),
        measure("leads-v1, --no-backup", 500, crm=False, closed=0, flags=("--no-backup",)),
        measure("crm-v3, backup", 5000, crm=True, closed=0, flags=()),
        measure("crm-v3, --no-backup", 5000, crm=True, closed=0, flags=("--no-backup",)),
        measure("nightly close, 40 % closed, backup", 500, crm=False, closed=200, flags=()),
        measure(
            "nightly close, 40 % closed, --no-backup",
            500,
            crm=False,
            closed=200,
            flags=("--no-backup",),
        ),
    ]
    for row in rows:
        print(json.dumps(row))
    with_backup, without = rows[4], rows[5]
    print(
        json.dumps(
            {
                "nightly_writes_vs_changing": f"{with_backup['written']} / 300",
                "nightly_requests_ratio": round(with_backup["requests"] / without["requests"], 3),
                "nightly_time_ratio": round(with_backup["elapsed_s"] / without["elapsed_s"], 3),
            }
        )
    )


if __name__ == "__main__":
    main()
