"""``bulkleads undo``: put back what a job overwrote."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bulkleads.cli.errors import handles_errors
from bulkleads.cli.options import JobArg, OutputFlags, SendFlags, flag_groups
from bulkleads.pipeline.lifecycle import resume_command
from bulkleads.pipeline.settings import Connection, JobOptions, Run
from bulkleads.pipeline.undo import undo
from bulkleads.send.options import ReadOptions
from bulkleads.token import load_token, optional_token


@handles_errors
@flag_groups
def undo_command(
    ctx: typer.Context,
    job: JobArg,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Write the previous values back even where a lead changed since the job.",
            metavar="",
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Read the leads and show what the undo would write.",
            metavar="",
        ),
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="Report path (default: <job report>.undo.report.csv beside it).",
            metavar="PATH",
        ),
    ] = None,
    fresh: Annotated[
        bool,
        typer.Option(
            "--fresh",
            help="Start this undo over instead of resuming it.",
            metavar="",
        ),
    ] = False,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Read every restored lead back.",
            metavar="",
        ),
    ] = False,
    *,
    send: SendFlags,
    output: OutputFlags,
) -> None:
    """Put back the values a job overwrote: a job of its own (resumable, paced, reported),
    which skips a lead changed since the job unless --force. Undoing an undo restores the job.

    Example: bulkleads undo closes.report.csv --dry-run, then bulkleads undo closes.report.csv
    """
    send, var = send.of_job(ctx, job, output.state_dir).with_profile(ctx)
    # a preview without a token stays offline: it plans and reports, reading nothing
    token = (
        optional_token(send.token_file, var=var)
        if dry_run
        else load_token(send.token_file, var=var)
    )
    run = Run(
        Connection(token=token),  # the job's API and URL: undo sends where the job went
        pace=send.pace(),
        reading=ReadOptions(verify=verify, force=force),
        job=JobOptions(
            report=report,
            dry_run=dry_run,
            fresh=fresh,
            state_dir=output.state_dir,
            command=resume_command(),
            alongside=send.alongside,
            wait_for_daily_reset=send.wait_for_daily_reset,
        ),
    )
    raise typer.Exit(undo(job, run, output.reporter(token, send.notify)))
