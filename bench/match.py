"""Requests per 100 records and utilization when records are matched by email (issue 20).

Against the sandbox at HubSpot's Free limit (100 requests per 10 s), 5,000 seeded contacts:

- by id: the file carries HubSpot's record ids (read by id, write by id): the baseline;
- by email: the file carries emails (read by email, which gives ids and backup, write by id);
- by email, a quarter unknown: 5,000 rows of which 1,250 no contact has (read, not written);
- the same with ``--create``: the 1,250 are created by upsert.

Requests are counted by the sandbox (the one property read before planning included), so the
figures are what a portal would see. Run: ``python bench/match.py`` (after ``make venv``).
"""

from __future__ import annotations

import json
import tempfile
import urllib.request
from pathlib import Path

from pacing import run_update, start_sandbox, stop

COUNT = 5000


def _stats(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/__sandbox/stats") as answer:  # noqa: S310 - loopback
        return json.load(answer)


def scenario(name: str, key: str, unknown: int, *extra: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        seed = folder / "seed.json"
        seed.write_text(
            json.dumps(
                [
                    {"id": str(1000 + i), "email": f"c{i}@example.com", "city": ""}
                    for i in range(COUNT)
                ]
            )
        )
        if key == "id":
            keys = [str(1000 + i) for i in range(COUNT)]
        else:
            keys = [f"c{i}@example.com" for i in range(COUNT - unknown)]
            keys += [f"new{i}@example.com" for i in range(unknown)]
        leads = folder / "leads.csv"
        leads.write_text(f"{key},city\n" + "".join(f"{k},Town{i}\n" for i, k in enumerate(keys)))
        proc, url = start_sandbox(
            "--limit", "100", "--window", "10", "--crm-seed", f"contacts={seed}"
        )
        try:
            flags = ["--api", "crm-v3", "--object", "contacts"]
            flags += ["--match", "email"] if key == "email" else []
            flags += list(extra)
            summary, _ = run_update(folder, leads, url, *flags)
            stats = _stats(url)
        finally:
            stop(proc)
    requests = sum(stats["requests"].values())
    written = stats["crm_applied_total"]  # updates and creations
    return {
        "scenario": name,
        "rows": COUNT,
        "written": written,
        "requests": requests,
        "per_100_written": round(100 * requests / written, 2),
        "per_100_rows": round(100 * requests / COUNT, 2),
        # None: every request fitted in the first window, so no wait to measure against
        "utilization": summary.get("utilization"),
        "429s": stats["requests"].get("429", 0),
        "seconds": summary.get("elapsed_seconds"),
    }


def main() -> None:
    rows = [
        scenario("by id (baseline)", "id", 0),
        scenario("by email", "email", 0),
        scenario("by email, a quarter unknown", "email", COUNT // 4),
        scenario("by email, a quarter unknown, --create", "email", COUNT // 4, "--create"),
    ]
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
