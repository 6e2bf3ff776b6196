"""``bulkleads retry``: send again what can succeed."""

from __future__ import annotations

from typing import Annotated

import typer

from ..cli.errors import handles_errors
from ..cli.options import JobArg, OutputFlags, SendFlags, flag_groups
from ..config import RunConfig
from ..run import retry
from ..token import load_token


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
    send, var = send.with_profile(ctx)
    token = load_token(send.token_file, var=var)
    config = RunConfig(
        input="",
        token=token,
        **send.run_settings(),
        state_dir=output.state_dir,
    )
    raise typer.Exit(retry(job, config, output.reporter(token), all_failed=all_failed))
