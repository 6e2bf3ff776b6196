"""Pacing where operators live: runs back to back, the portal's own window, another client that
comes and goes, and HubSpot's own Python client side by side. Part of `make bench-pacing`.

Every scenario runs the real CLI against the real sandbox at a 10-second rolling window and
prints, per run, its wall time against the physical minimum (``ceil(requests / limit) - 1``
windows: a rolling window admits its whole budget at once), the pace it reports (accepted
requests over what the limit admitted while it sent), and its 429s. Loopback only; every loop is
bounded in count and time.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from pacing import BIN, TOKEN, other_client


def start_sandbox(*flags: str) -> tuple[subprocess.Popen[bytes], str]:
    """The sandbox, its output to a file (a pipe nobody reads could fill and stall it)."""
    out = tempfile.NamedTemporaryFile(prefix="sandbox-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(
        [BIN, "sandbox", "--port", "0", *flags], stdout=out, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        first = Path(out.name).read_text().splitlines()
        if first and first[0].startswith("http"):
            return proc, first[0].strip()
        time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"the sandbox did not start: {Path(out.name).read_text()[-2000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(timeout=10)


def minimum(requests: int, limit: int, window: float = 10.0) -> float:
    return (math.ceil(requests / limit) - 1) * window if requests else 0.0


def cli(folder: Path, *args: str) -> tuple[dict, float]:
    """One CLI run sharing the scenario's state directory; its JSON summary and wall time."""
    started = time.monotonic()
    done = subprocess.run(
        [BIN, *args, "--log-format", "json", "--state-dir", str(folder / "state")],
        env={**os.environ, "HUBSPOT_ACCESS_TOKEN": TOKEN},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    wall = time.monotonic() - started
    events = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    summary = next((e for e in events if e.get("event") == "summary"), None)
    if summary is None:
        raise SystemExit(f"no summary from {args}: {done.stderr[-2000:]}")
    return summary, wall


def leads_file(folder: Path, name: str, guids: list[str], value: str) -> Path:
    path = folder / name
    path.write_text("guid,city\n" + "".join(f"{g},{value}{i}\n" for i, g in enumerate(guids)))
    return path


def row(name: str, summary: dict, wall: float, limit: int) -> dict[str, object]:
    requests = summary.get("requests", 0)
    sending = summary.get("elapsed_seconds", 0.0)
    least = minimum(requests, limit)
    return {
        "run": name,
        "requests": requests,
        "429s": summary.get("statuses", {}).get("429", 0),
        "sending_s": sending,
        "minimum_s": least,
        "sending/minimum": round(sending / least, 2) if least else "within 1 window",
        "pace": summary.get("utilization"),
        "wall_s": round(wall, 1),
    }


def sequence(limit: int, count: int = 120) -> list[dict[str, object]]:
    """dry run -> run -> a second file -> undo of the first, back to back, default pace."""
    guids = [f"{i:032x}" for i in range(1, 2 * count + 1)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        seed = folder / "seed.json"
        seed.write_text(json.dumps([{"guid": g, "city": ""} for g in guids]))
        proc, url = start_sandbox("--seed", str(seed), "--limit", str(limit), "--window", "10")
        first = leads_file(folder, "first.csv", guids[:count], "A")
        second = leads_file(folder, "second.csv", guids[count:], "B")
        base = ("--base-url", url)
        rows = []
        try:
            steps = [
                ("dry run", ("update", str(first), *base, "--dry-run", "--sample", "all")),
                ("run", ("update", str(first), *base)),
                ("second file", ("update", str(second), *base)),
                ("undo of the first", ("undo", str(first))),
            ]
            total_requests, total_sending = 0, 0.0
            for name, args in steps:
                summary, wall = cli(folder, *args)
                rows.append(row(f"{limit}/10s {name}", summary, wall, limit))
                total_requests += summary.get("requests", 0)
                total_sending += summary.get("elapsed_seconds", 0.0)
            stats = httpx.get(f"{url}/__sandbox/stats").json()
            rows.append(
                {
                    "run": f"{limit}/10s whole sequence",
                    "requests": total_requests,
                    "429s": stats["requests"].get("429", 0),
                    "sending_s": round(total_sending, 2),
                    "minimum_s": minimum(total_requests, limit),
                    "sending/minimum": round(total_sending / minimum(total_requests, limit), 2),
                    "pace": "",
                    "wall_s": "",
                }
            )
        finally:
            stop(proc)
    return rows


def default_pace(limit: int = 100, count: int = 150) -> list[dict[str, object]]:
    """No --rate: Leads v1's documented 10 per 1 s until the portal says 100 per 10 s."""
    guids = [f"{i:032x}" for i in range(1, count + 1)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        seed = folder / "seed.json"
        seed.write_text(json.dumps([{"guid": g, "city": ""} for g in guids]))
        proc, url = start_sandbox("--seed", str(seed), "--limit", str(limit), "--window", "10")
        try:
            leads = leads_file(folder, "leads.csv", guids, "C")
            summary, wall = cli(folder, "update", str(leads), "--base-url", url)
        finally:
            stop(proc)
    return [row(f"{limit}/10s default pace, no --rate", summary, wall, limit)]


def arrival(limit: int = 100, count: int = 1800, comes: float = 110, goes: float = 140) -> list:
    """Another client uses 5/s from ``comes`` to ``goes`` seconds into a long run."""
    guids = [f"{i:032x}" for i in range(1, count + 2)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        seed = folder / "seed.json"
        seed.write_text(json.dumps([{"guid": g, "city": ""} for g in guids]))
        proc, url = start_sandbox("--seed", str(seed), "--limit", str(limit), "--window", "10")
        tally = {"accepted": 0.0, "refused": 0.0, "seconds": 0.0}
        try:
            leads = leads_file(folder, "leads.csv", guids[1:], "D")
            started = time.monotonic()

            def other() -> None:
                time.sleep(comes)
                other_client(url, guids[0], 5, started + goes, tally)

            threading.Thread(target=other, daemon=True).start()
            summary, wall = cli(folder, "update", str(leads), "--base-url", url, "--no-backup")
            timeline = httpx.get(f"{url}/__sandbox/stats").json()
        finally:
            stop(proc)
    result = row(f"{limit}/10s another client {comes:g}-{goes:g} s", summary, wall, limit)
    result["other_accepted"] = int(tally["accepted"])
    result["other_429s"] = int(tally["refused"])
    result["peak_in_window"] = timeline["peak_accepted_in_window"]
    return [result]


HUBSPOT_CLIENT = """
import sys, time, urllib3
from concurrent.futures import ThreadPoolExecutor
from hubspot import HubSpot
from hubspot.crm.contacts import BatchInputSimplePublicObjectBatchInput

url, token, count, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
# Its README's example retries 429 only for GET; POSTs that hit a 429 would be lost.
retry = urllib3.util.retry.Retry(
    total=20, status_forcelist=(429,), allowed_methods=None, backoff_factor=1,
    respect_retry_after_header=True,
)
client = HubSpot(access_token=token, retry=retry, host=url)
batches = [
    [{"id": str(1000 + i), "properties": {"city": f"H{i}"}} for i in range(s, min(s + 100, count))]
    for s in range(0, count, 100)
]
def send(inputs):
    client.crm.contacts.batch_api.update(BatchInputSimplePublicObjectBatchInput(inputs=inputs))
started = time.monotonic()
with ThreadPoolExecutor(threads) as pool:
    list(pool.map(send, batches))
print(time.monotonic() - started)
"""


def _contacts(folder: Path, records: int, limit: int, city: str) -> tuple[Path, tuple[str, ...]]:
    """A seed of ``records`` contacts with no city, a file giving each one, and the sandbox's
    flags that serve them at ``limit`` requests per 10 s."""
    seed_rows = [{"id": str(1000 + i), "city": ""} for i in range(records)]
    seed = folder / "seed.json"
    seed.write_text(json.dumps(seed_rows))
    contacts = folder / "contacts.csv"
    contacts.write_text(
        "id,city\n" + "".join(f"{r['id']},{city}{i}\n" for i, r in enumerate(seed_rows))
    )
    return contacts, ("--crm-seed", f"contacts={seed}", "--limit", str(limit), "--window", "10")


def against_hubspot_client(limit: int = 100, records: int = 20_000) -> list[dict[str, object]]:
    """200 batch writes of 100 contacts: bulkleads (--no-backup: writes only, as the client
    sends) beside hubspot-api-client sequential and with four threads, each on a fresh
    sandbox that sends Retry-After with its 429s."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        contacts, sandbox = _contacts(folder, records, limit, "B")
        for name, threads in (
            ("hubspot-api-client sequential", 1),
            ("hubspot-api-client 4 threads", 4),
        ):
            proc, url = start_sandbox(*sandbox, "--retry-after")
            try:
                done = subprocess.run(
                    [sys.executable, "-c", HUBSPOT_CLIENT, url, TOKEN, str(records), str(threads)],
                    capture_output=True,
                    text=True,
                    timeout=900,
                    check=True,
                )
                stats = httpx.get(f"{url}/__sandbox/stats").json()
            finally:
                stop(proc)
            seconds = float(done.stdout.strip())
            requests = sum(stats["requests"].values())
            rows.append(
                {
                    "run": name,
                    "requests": requests,
                    "429s": stats["requests"].get("429", 0),
                    "sending_s": round(seconds, 2),
                    "minimum_s": minimum(records // 100, limit),
                    "sending/minimum": round(seconds / minimum(records // 100, limit), 2),
                    "pace": "",
                    "wall_s": round(seconds, 1),
                    "updated": stats["crm_applied_total"],
                }
            )
        proc, url = start_sandbox(*sandbox, "--retry-after")
        try:
            summary, wall = cli(
                folder,
                "update",
                str(contacts),
                "--base-url",
                url,
                "--api",
                "crm-v3",
                "--object",
                "contacts",
                "--no-backup",
            )
            stats = httpx.get(f"{url}/__sandbox/stats").json()
        finally:
            stop(proc)
        result = row("bulkleads, default pace", summary, wall, limit)
        result["updated"] = stats["crm_applied_total"]
        rows.append(result)
    return rows


def remembered(limit: int = 100, records: int = 20_000) -> list[dict[str, object]]:
    """The 20,000-record run after a dry run of it (the operator's real sequence): the run
    checks against the definitions the dry run read, so its 200 writes fill two windows
    exactly, where the property read made a third."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        contacts, sandbox = _contacts(folder, records, limit, "R")
        proc, url = start_sandbox(*sandbox, "--retry-after")
        args = ["update", str(contacts), "--base-url", url, "--api", "crm-v3", "--no-backup"]
        try:
            cli(folder, *args, "--dry-run")
            time.sleep(10.5)  # the dry run's read leaves the window: the run is measured alone
            summary, wall = cli(folder, *args)
            stats = httpx.get(f"{url}/__sandbox/stats").json()
        finally:
            stop(proc)
    result = row("bulkleads after its dry run (definitions remembered)", summary, wall, limit)
    result["updated"] = stats["crm_applied_total"]
    result["definition_reads"] = stats["definition_reads"]
    return [result]


SCENARIOS = {
    "sequence": lambda: sequence(100) + sequence(190),
    "default": default_pace,
    "arrival": arrival,
    "hubspot": against_hubspot_client,
    # 198 writes and bulkleads' property read fit two windows' budget: no request left over.
    "hubspot-19800": lambda: against_hubspot_client(records=19_800),
    "remembered": remembered,
}


def main() -> None:
    wanted = sys.argv[1:] or list(SCENARIOS)
    rows: list[dict[str, object]] = []
    for name in wanted:
        rows += SCENARIOS[name]()
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    print(" | ".join(keys))
    for r in rows:
        print(" | ".join(str(r.get(k, "")) for k in keys))


if __name__ == "__main__":
    main()
