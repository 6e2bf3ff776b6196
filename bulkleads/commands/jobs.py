"""``bulkleads jobs`` and ``jobs prune``: the jobs in the state directory."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Final
from urllib.parse import urlsplit

import typer

from bulkleads.cli.errors import handles_errors
from bulkleads.cli.options import StateDir
from bulkleads.errors import UsageError
from bulkleads.fields import plural
from bulkleads.hubspot import from_meta as api_from_meta
from bulkleads.jobstore.folder import JobFolder, JobInfo, parse_age
from bulkleads.jobstore.store import JobStore
from bulkleads.report.rows import (
    FAILED_OUTCOMES,
    LINK_PROBLEMS,
    RowOutcome,
    count_links,
    count_outcomes,
)
from bulkleads.report.screen import OUTCOMES

jobs_app = typer.Typer(invoke_without_command=True)
# Each column's header and its key in a row (and in --json): "created" is the job's time
# there, so the records it created are "created_records".
_JOB_COLUMNS: Final = (
    ("job", "job"),
    ("status", "status"),
    ("planned", "created"),
    ("input", "input"),
    ("target", "target"),
    ("rows", "rows"),
    *((str(o), "created_records" if o == "created" else str(o)) for o in OUTCOMES[:-1]),
    ("links", "links"),
    ("report", "report"),
)
# A terminal's table: columns that hold something in some row, times to the minute and
# paths as file names, so that a 160-column terminal shows whole cells.
_ALWAYS: Final = frozenset({"job", "status", "planned", "input", "target", "rows"})


@jobs_app.callback()
@handles_errors
def jobs_command(
    ctx: typer.Context,
    everything: Annotated[
        bool, typer.Option("--all", help="Archived jobs too (--fresh keeps them).", metavar="")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON array, for scripts.", metavar="")
    ] = False,
    state_dir: StateDir = None,
) -> None:
    """List the jobs: id, created, input, target, status (done, partial, running, deferred,
    archived, unreadable) and rows by outcome, with the report's words.

    Jobs live in the user's state directory (~/.local/state/bulkleads on Linux, or
    $BULKLEADS_STATE_DIR, or --state-dir), whatever folder a command is run from. A terminal
    gets a table; a pipe gets tab-separated lines with nothing cut.

    Example: bulkleads jobs --all | grep deferred
    """
    if ctx.invoked_subcommand is not None:
        return
    folder = JobFolder(state_dir)
    rows = [_job_row(info) for info in folder.list(archived=everything)]
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=1))
        return
    if not rows:
        print(f"no jobs in {folder.root}", file=sys.stderr)
        return
    if sys.stdout.isatty():
        _print_table(rows)
        return
    print("\t".join(header for header, _ in _JOB_COLUMNS))
    for row in rows:
        cells = (str(row[key]).replace("\t", " ").replace("\n", " ") for _, key in _JOB_COLUMNS)
        print("\t".join(cells))


def _print_table(rows: list[dict[str, object]]) -> None:
    from rich.console import Console
    from rich.table import Table

    shown = [
        (header, key)
        for header, key in _JOB_COLUMNS
        if header in _ALWAYS or any(row[key] not in ("", 0) for row in rows)
    ]
    table = Table(*(header for header, _ in shown))
    for row in rows:
        cells = {**row, "created": str(row["created"])[:16].replace("T", " ")}
        for key in ("input", "report"):
            cells[key] = Path(str(row[key])).name if row[key] else ""
        table.add_row(*(str(cells[key]) for _, key in shown))
    Console().print(table)


@jobs_app.command("prune")
@handles_errors
def prune_command(
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than",
            help="Age of the job file: 30d, 12h, 2w ... (required).",
            metavar="AGE",
        ),
    ],
    state_dir: StateDir = None,
) -> None:
    """Remove finished and archived jobs whose files are older than --older-than; never a
    job that is running, has leads left to send, or is unreadable. Says what it freed.

    Example: bulkleads jobs prune --older-than 30d
    """
    removed = JobFolder(state_dir).prune(parse_age(older_than))
    freed = sum(size for _, size in removed)
    for job, size in removed:
        print(f"removed {job} ({size / 1e6:.1f} MB)")
    print(f"pruned {len(removed)} {plural(len(removed), 'job')}, freed {freed / 1e6:.1f} MB")


def _job_row(info: JobInfo) -> dict[str, object]:
    """One job as ``bulkleads jobs`` shows it."""
    row: dict[str, object] = {str(key): "" for _, key in _JOB_COLUMNS}
    row.update(job=info.job_id, status="unreadable", report=info.damage or "")
    if info.damage is not None:
        return row
    meta = info.meta
    with JobStore(info.path) as store:
        counts = count_outcomes(store)
        links = count_links(store)
    if info.archived:
        status = "archived"
    elif info.running:
        status = "running"
    elif counts[RowOutcome.DEFERRED] or counts[RowOutcome.NOT_SENT] or info.links_left:
        status = "deferred"  # the same command (or retry) sends the rest
    elif any(counts[o] for o in (*FAILED_OUTCOMES, RowOutcome.UNCONFIRMED)) or any(
        links[word] for word in LINK_PROBLEMS
    ):
        status = "partial"
    else:
        status = "done"
    host = urlsplit(meta.base_url or "").hostname or ""
    try:
        target = api_from_meta(meta.api_options).describe(host)
    except UsageError:  # a job made by a later version, for an API this one does not know
        target = f"{meta.api_options.get('api')} {host}"
    row.update(
        status=status,
        created=info.created,
        input=meta.input,
        target=target,
        rows=sum(counts.values()),
        report=meta.report or "",
        links=", ".join(f"{n} {word}" for word, n in sorted(links.items()) if n),
        # "created" is the job's date here: the records it created are "created_records"
        **{("created_records" if k == "created" else k): counts[k] for k in OUTCOMES[:-1]},
    )
    return row
