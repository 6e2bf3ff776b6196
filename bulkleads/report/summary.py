"""The ``--summary`` file: the last word of every command as one JSON object, for monitors
(cron, CI). Written on every exit that has a job or an error, never over a file that is not a
summary.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from bulkleads.errors import UsageError
from bulkleads.report.paths import check_regular
from bulkleads.report.rows import RowOutcome


def check_summary_path(path: Path) -> None:
    """``--summary`` writes only a summary: never over the input, a job file, a report or
    any other file that is not a summary bulkleads wrote (an empty file is fine)."""
    check_regular(path, "--summary")
    try:
        with open(path, "rb") as f:
            start = f.read(4096)
    except FileNotFoundError:
        return
    except IsADirectoryError:
        raise UsageError(f"--summary {path} is a folder; give a file path") from None
    except OSError as exc:
        raise UsageError(f"--summary {path}: {exc.strerror}") from None
    if not start.strip():
        return
    try:
        data = json.loads(start)
    except ValueError:
        data = None
    if not (isinstance(data, dict) and data.get("event") == "summary"):
        raise UsageError(
            f"--summary {path} exists and is not a bulkleads summary (the input, a report or a "
            "job file?): give another path"
        )


def error_summary(message: str, kind: str, exit_code: int) -> dict[str, object]:
    """The summary of a command that stopped on an error: zero counts, the error, the code."""
    data: dict[str, object] = {"event": "summary", "rows": 0, "requests": 0}
    data.update({str(outcome): 0 for outcome in RowOutcome})
    data.update(error=message, type=kind, exit_code=exit_code)
    return data


def write_error_summary(path: Path, message: str, kind: str, exit_code: int) -> None:
    """The summary of a command that stopped on an error (exit 2 included): a monitor never
    reads last night's numbers as tonight's."""
    try:
        check_summary_path(path)
    except UsageError:
        return  # never over a file that is not a summary: the refusal is on stderr
    data = error_summary(message, kind, exit_code)
    try:
        write_summary(path, data)
    except OSError:
        return  # the error itself is already on stderr


def write_summary(path: Path, data: dict[str, object]) -> None:
    """One JSON line, replaced whole: a monitor reading the file never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
