"""``bulkleads retry``: send again what can succeed."""

from __future__ import annotations

from typing import Annotated

import typer

from bulkleads.cli.errors import handles_errors
from bulkleads.cli.options import JobArg, OutputFlags, SendFlags, flag_groups
from bulkleads.pipeline.lifecycle import retry
from bulkleads.pipeline.settings import Connection, JobOptions, Run
from bulkleads.token import load_token


@handles_errors
@flag_groups
def retry_command(
    ctx: typer.Context,
    job: JobArg,
    all_failed: Annotated[
        bool,
        typer.Option(
            "--all-failed",
            help="Also send again the leads that failed for good (400, 404, ...): by default "
            "only not_sent leads and failures whose last answer was transient go again.",
            metavar="",
        ),
    ] = False,
    *,
    send: SendFlags,
    output: OutputFlags,
) -> None:
    """Send again what can succeed: leads not sent (token refused) and failures whose last answer
    was transient (429, 5xx, timeout, connection); then refresh the report.

    Example: bulkleads retry closes.report.csv   (after an outage, or a fixed token)
    """
    send, var = send.of_job(ctx, job, output.state_dir).with_profile(ctx)
    token = load_token(send.token_file, var=var)
    run = Run(
        Connection(token=token),  # the job's API and URL: retry sends where the job went
        pace=send.pace(),
        job=JobOptions(
            state_dir=output.state_dir,
            alongside=send.alongside,
            wait_for_daily_reset=send.wait_for_daily_reset,
        ),
    )
    raise typer.Exit(retry(job, run, output.reporter(token, send.notify), all_failed=all_failed))
