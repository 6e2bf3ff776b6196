"""``bulkleads jobs`` and ``jobs prune``: the jobs in the state directory."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Final
from urllib.parse import urlsplit

import typer

from ..cli.errors import handles_errors
from ..cli.options import StateDir
from ..console import (
    OUTCOMES,
    plural,
)
from ..errors import UsageError
from ..hubspot import from_meta as api_from_meta
from ..jobs import JobFolder, JobInfo, parse_age
from ..report import FAILED_OUTCOMES, RowOutcome, count_outcomes
from ..store import JobStore

jobs_app = typer.Typer(invoke_without_command=True)
_JOB_COLUMNS: Final = (
    "job",
    "status",
    "created",
    "input",
    "target",
    "rows",
    *OUTCOMES[:-1],  # planned is a dry run's word; a job's rows are never planned
    "report",
)


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
        from rich.console import Console
        from rich.table import Table

        table = Table(*_JOB_COLUMNS)
        for row in rows:
            table.add_row(*(str(row[c]) for c in _JOB_COLUMNS))
        Console().print(table)
        return
    print("\t".join(_JOB_COLUMNS))
    for row in rows:
        print("\t".join(str(row[c]).replace("\t", " ").replace("\n", " ") for c in _JOB_COLUMNS))


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
    row: dict[str, object] = dict.fromkeys(_JOB_COLUMNS, "")
    row.update(job=info.job_id, status="unreadable", report=info.damage or "")
    if info.damage is not None:
        return row
    meta = info.meta
    with JobStore(info.path) as store:
        counts = count_outcomes(store)
    if info.archived:
        status = "archived"
    elif info.running:
        status = "running"
    elif counts[RowOutcome.DEFERRED]:
        status = "deferred"
    elif any(counts[o] for o in (*FAILED_OUTCOMES, RowOutcome.UNCONFIRMED)):
        status = "partial"
    else:
        status = "done"
    host = urlsplit(str(meta.get("base_url", ""))).hostname or ""
    try:
        target = api_from_meta(meta).describe(host)
    except UsageError:  # a job made by a later version, for an API this one does not know
        target = f"{meta.get('api')} {host}"
    row.update(
        status=status,
        created=info.created,
        input=meta.get("input", ""),
        target=target,
        rows=sum(counts.values()),
        report=meta.get("report", ""),
        # "created" is the job's date here: the records it created are "created_records"
        **{("created_records" if k == "created" else k): counts[k] for k in OUTCOMES[:-1]},
    )
    return row
