"""The suite's fork server (``forked.py``) runs the CLI as the installed script does.

Most end-to-end tests run the CLI forked from a process that has already imported it; these
tests hold it to the script: the same output and exit code, the run's own folder and
environment, and a fresh interpreter wherever a fork could not be one.
"""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import pytest

from tests.conftest import fork_server, run_cli
from tests.forked import forkable


def _typo_file(folder: Path) -> Path:
    leads = folder / "leads.csv"
    leads.write_text("guid,firstname\n0123456789abcdef0123456789abcdef,Ada\n")
    return leads


@pytest.mark.parametrize(
    "args",
    [
        ["--version"],
        ["--help"],
        ["update", "--help"],
        ["jobs"],
        ["update", "missing.csv"],
        ["update", "leads.csv", "--dry-run"],  # a relative path: read from the run's folder
        ["update", "leads.csv", "--dry-run", "--log-format", "json"],
        ["report", "no-such-job"],
    ],
    ids=lambda args: " ".join(args),
)
def test_a_forked_run_says_and_exits_as_the_script_does(tmp_path: Path, args: list[str]) -> None:
    _typo_file(tmp_path)
    forked = run_cli(*args, cwd=tmp_path)
    started = run_cli(*args, cwd=tmp_path, fork=False)
    assert forked.code == started.code
    assert forked.stdout == started.stdout
    assert _untimed(forked.stderr) == _untimed(started.stderr)


def _untimed(text: str) -> str:
    """JSON events carry the second they were written."""
    return re.sub(r'"time": "[^"]*"', '"time": "T"', text)


def test_a_forked_run_takes_the_environment_it_is_given(tmp_path: Path) -> None:
    """Variables the CLI reads at run time come from the run, not from the server."""
    _typo_file(tmp_path)
    elsewhere = tmp_path / "other-state"
    listing = run_cli("jobs", cwd=tmp_path, env={"BULKLEADS_STATE_DIR": str(elsewhere)})
    assert f"no jobs in {elsewhere}" in listing.stderr
    as_json = run_cli(
        "update", "leads.csv", cwd=tmp_path, env={"BULKLEADS_LOG_FORMAT": "json"}, token=None
    )
    assert as_json.code == 2
    assert [json.loads(line)["level"] for line in as_json.stderr.splitlines()] == ["error"]


def test_a_forked_run_is_a_process_of_its_own(tmp_path: Path, sandbox) -> None:
    """Its own pid, its end by a signal reported as Popen reports it, and the server still
    serving the next run."""
    proc = sandbox(seed=None).proc
    assert proc.pid not in (os.getpid(), fork_server().pid) and proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    assert run_cli("--version", cwd=tmp_path).code == 0


def test_only_an_interpreter_started_alike_is_forked() -> None:
    """A variable the interpreter reads as it starts must match the server's; others may
    differ (they are read at run time, from the run's environment)."""
    server = {"LANG": "C.UTF-8", "PATH": "/bin", "PYTHONUNBUFFERED": "1"}
    assert forkable({**server, "PATH": "/usr/bin", "HUBSPOT_ACCESS_TOKEN": "x"}, server)
    assert not forkable({**server, "LANG": "de_DE.ISO-8859-1"}, server)
    assert not forkable({**server, "LC_ALL": "C"}, server)
    assert not forkable({k: v for k, v in server.items() if k != "PYTHONUNBUFFERED"}, server)
    assert not forkable({**server, "PYTHONIOENCODING": "latin-1"}, server)
