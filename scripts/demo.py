"""`make demo`: a real update job, end to end, against the built-in sandbox.

Starts `bulkleads sandbox` on a free loopback port, seeded from sample_data/seed.json, runs
`bulkleads update sample_data/leads.csv` against it exactly as a user would, shows one lead
before and after, then `bulkleads undo` puts the values back and the lead is checked against
what it was; writes the job's page (`bulkleads report --html`); stops the sandbox. Everything
it writes is in demo-output/ (ignored by git), replaced by the next demo: nothing piles up.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data"
OUTPUT = ROOT / "demo-output"
TOKEN = "sandbox-token"  # noqa: S105 - the sandbox's well-known credential
SHOWN_GUID = "2e76d88380bc38eabb1933d3f6b8719f"


def fetch(url: str) -> dict[str, object]:
    """A lead: the API answers with an array holding it. The demo's read shares the portal's
    window with the job that just ran, so a 429 waits as HubSpot asks and reads again."""
    for _ in range(10):
        answer = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
        if answer.status_code != 429:
            break
        time.sleep(float(answer.headers.get("Retry-After") or 1))
    answer.raise_for_status()
    data = answer.json()
    return data[0] if isinstance(data, list) else data


def main() -> int:
    bulkleads = [sys.executable, "-m", "bulkleads"]
    sandbox = subprocess.Popen(
        [*bulkleads, "sandbox", "--seed", str(SAMPLE / "seed.json"), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sandbox.stdout is not None
        base_url = sandbox.stdout.readline().strip()
        if not base_url.startswith("http://"):
            print("demo: the sandbox did not start", file=sys.stderr)
            return 1
        before = fetch(f"{base_url}/leads/v1/lead/{SHOWN_GUID}")
        shutil.rmtree(OUTPUT, ignore_errors=True)  # the previous demo's, not anyone's data
        state_dir = OUTPUT / "state"
        state_dir.mkdir(parents=True)
        report = OUTPUT / "leads.report.csv"
        command = [
            *bulkleads,
            "update",
            str(SAMPLE / "leads.csv"),
            "--base-url",
            base_url,
            "--state-dir",
            str(state_dir),
            "--report",
            str(report),
            "--custom-field",
            "Lead Source",  # the sample's one custom field; a typo of a standard one stops the run
        ]
        print(
            f"$ HUBSPOT_ACCESS_TOKEN=*** bulkleads update sample_data/leads.csv "
            f"--custom-field 'Lead Source' --base-url {base_url}\n",
            flush=True,
        )
        env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": TOKEN}
        code = subprocess.run(command, env=env, check=False).returncode
        after = fetch(f"{base_url}/leads/v1/lead/{SHOWN_GUID}")
        changed = {k: (before.get(k), v) for k, v in after.items() if before.get(k) != v}
        print(f"\nlead {SHOWN_GUID} changed: {json.dumps(changed)}")
        if code == 1:
            print(
                "exit 1 is expected here: the sample holds invalid rows and a lead the portal "
                "does not have, to show how they are reported."
            )
        print(f"\n$ bulkleads undo {report.name}   # put back every value the job overwrote\n")
        undo = [*bulkleads, "undo", str(report), "--state-dir", str(state_dir)]
        undone = subprocess.run(undo, env=env, check=False).returncode
        restored = fetch(f"{base_url}/leads/v1/lead/{SHOWN_GUID}") == before
        print(f"\nlead {SHOWN_GUID} is back as it was: {restored}")
        page = OUTPUT / "leads.html"
        print(f"\n$ bulkleads report {report.name} --html {page.name}   # its pace, on one page\n")
        shown = [*bulkleads, "report", str(report), "--state-dir", str(state_dir)]
        subprocess.run([*shown, "--html", str(page), "--quiet"], env=env, check=False)
        print(f"page: {page}")
        return 0 if code in (0, 1) and changed and undone == 0 and restored else 1
    finally:
        sandbox.send_signal(signal.SIGTERM)
        sandbox.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
