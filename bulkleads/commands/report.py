"""``bulkleads report``: a job's report (and page) again."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bulkleads.cli.errors import handles_errors
from bulkleads.cli.options import JobArg, LogFmt, Quiet, StateDir, SummaryFile, make_reporter
from bulkleads.pipeline.lifecycle import write_job_report


@handles_errors
def report_command(
    job: JobArg,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="Where to write it (default: where the job wrote it).",
            metavar="PATH",
        ),
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option(
            "--html",
            help="Also write one self-contained HTML page: the pace of every run against the "
            "portal's limit (429s and retries marked), rows by outcome, changes by field, "
            "failures.",
            metavar="PATH",
        ),
    ] = None,
    state_dir: StateDir = None,
    quiet: Quiet = False,
    log_format: LogFmt = "text",
    summary: SummaryFile = None,
) -> None:
    """Write a job's report again from its job file.

    Example: bulkleads report closes.csv --report copy.csv (the input's latest job);
    bulkleads report closes.csv --html closes.html (its pace, on one page)
    """
    raise typer.Exit(
        write_job_report(
            job,
            state_dir,
            report,
            make_reporter(log_format, quiet, None, summary=summary),
            page=html,
        )
    )
