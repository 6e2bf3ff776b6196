"""The job's page: `bulkleads report JOB --html PATH`, checked in a real headless Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import json_lines, run_cli, write_seed

GUIDS = [f"{i:032x}" for i in range(1, 31)]
_CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
)


def _in_chromium(page: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The page as headless Chromium leaves its DOM once its script has run."""
    assert _CHROMIUM is not None
    return subprocess.run(
        [_CHROMIUM, *_FLAGS, f"--user-data-dir={tmp_path / 'p'}", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def _job_with_a_page(tmp_path: Path, sandbox) -> tuple[Path, int]:
    """A job of 30 leads (one unknown: a 404) read and written; its page; its request count."""
    box = sandbox("--limit", "100", "--window", "10", seed=write_seed(tmp_path / "s.json", GUIDS))
    leads = tmp_path / "close.csv"
    leads.write_text(
        "guid,city\n"
        + "".join(f"{g},Town{i}\n" for i, g in enumerate(GUIDS))
        + f"{'f' * 32},Nowhere\n"
    )
    ran = run_cli("update", str(leads), "--base-url", box.url, "--log-format", "json", cwd=tmp_path)
    assert ran.code == 1, ran.stderr  # the unknown lead fails
    requests = next(e for e in json_lines(ran.stderr) if e["event"] == "summary")["requests"]
    page = tmp_path / "close.html"
    made = run_cli("report", str(leads), "--html", str(page), "--log-format", "json", cwd=tmp_path)
    summary = next(e for e in json_lines(made.stderr) if e["event"] == "summary")
    assert summary["page"] == str(page.resolve())
    return page, requests


def test_the_page_holds_every_request_and_no_secret(tmp_path: Path, sandbox) -> None:
    """The page draws as many requests as the job made, names the limit and the failure,
    fetches nothing from the network, and holds no token."""
    page, requests = _job_with_a_page(tmp_path, sandbox)
    text = page.read_text()
    assert f'<span id="total">{requests}</span>' in text
    assert "limit: 100 per 10 s" in text
    assert "<tr><td>city</td><td>30</td></tr>" in text  # changes by field
    assert "reading current values: No such lead." in text  # the 404, in the failures
    assert "sandbox-token" not in text
    assert "http://" not in text and "https://" not in text and "src=" not in text


def test_the_page_never_replaces_the_input_or_a_file_not_ours(tmp_path: Path, sandbox) -> None:
    """--html naming the input or a file of someone else's is exit 2, both left as they were."""
    page, _ = _job_with_a_page(tmp_path, sandbox)
    leads = tmp_path / "close.csv"
    before = leads.read_bytes()
    refused = run_cli("report", str(leads), "--html", str(leads), cwd=tmp_path)
    assert refused.code == 2 and leads.read_bytes() == before
    notes = tmp_path / "notes.html"
    notes.write_text("<html>my notes</html>")
    refused = run_cli("report", str(leads), "--html", str(notes), cwd=tmp_path)
    assert refused.code == 2 and notes.read_text() == "<html>my notes</html>"
    again = run_cli("report", str(leads), "--html", str(page), cwd=tmp_path)
    assert again.code == 1  # its own page is rewritten (exit 1 repeats the failed lead)


@pytest.mark.skipif(
    _CHROMIUM is None,
    reason="headless Chromium is not installed (Debian: apt-get install chromium; "
    ".ci/run installs it)",
)
def test_the_page_runs_in_a_real_browser(tmp_path: Path, sandbox) -> None:
    """Chromium loads the page with no JavaScript error, its script runs to the end, and the
    charts it finds hold exactly the job's requests."""
    page, requests = _job_with_a_page(tmp_path, sandbox)
    shown = _in_chromium(page, tmp_path)
    assert "Uncaught" not in shown.stderr, shown.stderr
    assert 'data-ready="yes"' in shown.stdout
    assert f'data-requests="{requests}"' in shown.stdout
    assert 'data-consistent="true"' in shown.stdout


def _job_with_links(tmp_path: Path, sandbox) -> tuple[Path, int]:
    """20 contacts linked to companies by domain, 5 of the domains unknown: its page."""
    contacts = [{"id": str(i), "email": f"c{i}@x.io"} for i in range(1, 21)]
    companies = [{"id": str(500 + i), "domain": f"d{i}.io"} for i in range(1, 16)]
    (tmp_path / "contacts.json").write_text(json.dumps(contacts))
    (tmp_path / "companies.json").write_text(json.dumps(companies))
    box = sandbox(
        "--limit", "100", "--window", "10",
        "--crm-seed", f"contacts={tmp_path / 'contacts.json'}",
        "--crm-seed", f"companies={tmp_path / 'companies.json'}",
        seed=None,
    )  # fmt: skip
    rows = ["email,jobtitle,associate:companies"]
    rows += [f"c{i}@x.io,CTO,d{i}.io" for i in range(1, 21)]
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    args = ["update", str(tmp_path / "m.csv"), "--api", "crm-v3", "--base-url", box.url]
    args += ["--match", "email", "--associate-by", "companies=domain", "--log-format", "json"]
    ran = run_cli(*args, cwd=tmp_path)
    assert ran.code == 1, ran.stderr  # 5 links not found
    requests = next(e for e in json_lines(ran.stderr) if e["event"] == "summary")["requests"]
    page = tmp_path / "m.html"
    assert run_cli("report", str(tmp_path / "m.csv"), "--html", str(page), cwd=tmp_path).code == 1
    return page, requests


def test_the_page_shows_the_links_phases_outcomes_and_losses(tmp_path: Path, sandbox) -> None:
    """Finding, reading links and linking are drawn and named apart from the records' phases;
    the links' outcomes are counted beside the rows'; each link not made is in the failures,
    the reason the job exited 1."""
    page, _ = _job_with_links(tmp_path, sandbox)
    text = page.read_text()
    for phase in ("finding", "reading links", "linking", "reading", "updating"):
        assert f'data-phase="{phase}"' in text, phase
    assert "<h2>Links by outcome</h2>" in text
    assert "<tr><td>added</td><td>15</td></tr>" in text
    assert "<tr><td>not found</td><td>5</td></tr>" in text
    assert "link to companies d16.io" in text and "no company has domain d16.io" in text


@pytest.mark.skipif(
    _CHROMIUM is None,
    reason="headless Chromium is not installed (Debian: apt-get install chromium; "
    ".ci/run installs it)",
)
def test_the_page_of_a_job_with_links_runs_in_a_real_browser(tmp_path: Path, sandbox) -> None:
    """Chromium loads it with no error and its charts hold every request the job made, the
    links' included."""
    page, requests = _job_with_links(tmp_path, sandbox)
    shown = _in_chromium(page, tmp_path)
    assert "Uncaught" not in shown.stderr, shown.stderr
    assert f'data-requests="{requests - 1}"' in shown.stdout  # the property read is no phase
    assert 'data-consistent="true"' in shown.stdout
