"""The docs cannot drift: every ``sh sandbox`` code block in the README and ``docs/`` is run,
line by line, by the real CLI against a real sandbox, and each line must end with the exit code
its comment names (``# exit 1: ...``; none named: 0)."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT, SAMPLE, run_cli

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"^```sh sandbox\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks() -> list[tuple[str, str]]:
    """``(page:line, block)`` of every block the docs mark as run against the sandbox."""
    found = []
    for page in PAGES:
        text = page.read_text()
        for match in _BLOCK.finditer(text):
            line = text[: match.start()].count("\n") + 1
            found.append((f"{page.relative_to(ROOT)}:{line}", match.group(1)))
    return found


def test_the_docs_hold_blocks_to_run() -> None:
    """At least the README's rehearsal is marked to run (a renamed marker would run none)."""
    assert any(where.startswith("README.md") for where, _ in blocks())


@pytest.mark.parametrize(("where", "block"), blocks(), ids=[w for w, _ in blocks()])
def test_a_docs_example_runs_as_written(tmp_path: Path, sandbox, where: str, block: str) -> None:
    """Each command of the block, run from a copy of the repository's sample files, ends with
    the exit code the block says."""
    box = sandbox()
    shutil.copytree(SAMPLE, tmp_path / "sample_data")
    env = {"BULKLEADS_BASE_URL": box.url, "BULKLEADS_LOG_FORMAT": "text"}
    for line in block.splitlines():
        command, _, comment = line.partition("  #")
        if not command.strip():
            continue
        expected = re.match(r"\s*exit (\d+)", comment)
        args = shlex.split(command)
        assert args[0] == "bulkleads", f"{where}: {line}"
        ran = run_cli(*args[1:], cwd=tmp_path, env=env)
        want = int(expected.group(1)) if expected else 0
        assert ran.code == want, f"{where}: `{line}` exited {ran.code}: {ran.stderr[-2000:]}"
