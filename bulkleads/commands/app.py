"""The Typer app: its commands (one module each in ``bulkleads.commands``) and the entry point."""

from __future__ import annotations

import json
import sys
import traceback
from typing import Annotated

import typer

from bulkleads import __version__
from bulkleads.cli.errors import CLICK_ERRORS, INTERRUPTED, fail, format_asked, scrub
from bulkleads.commands import jobs, report, retry, sandbox, undo, update
from bulkleads.errors import EXIT_ABORTED, EXIT_USAGE, BulkleadsError
from bulkleads.report.screen import print_error

app = typer.Typer(
    help="Apply bulk updates to HubSpot records (Leads v1 and the CRM objects) from CSV, TSV, "
    "JSON Lines or .xlsx files: validated before anything is sent, backed up, paced to the "
    "portal's rate limit, retried, resumable, undoable, with a report line per row.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


app.command("update")(update.update_command)
app.command("retry")(retry.retry_command)
app.command("undo")(undo.undo_command)
app.command("report")(report.report_command)
app.add_typer(jobs.jobs_app, name="jobs")
app.command("sandbox")(sandbox.sandbox_command)


@app.callback(invoke_without_command=True)
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the version.",
            metavar="",
        ),
    ] = False,
) -> None:
    if version:
        typer.echo(f"bulkleads {__version__}")
        raise typer.Exit(0)


def main() -> None:
    """Console entry point: known errors become one line and an exit code, never a traceback.
    With --log-format json every line is a JSON object: usage errors and crashes too."""
    fmt = format_asked()
    try:
        if fmt == "text":
            app(standalone_mode=True)  # prints click's errors itself, and exits
            return
        code = app(standalone_mode=False)  # click's errors come back here, to print as JSON
        raise SystemExit(code if isinstance(code, int) else 0)
    except CLICK_ERRORS as error:
        message = error.format_message()  # type: ignore[attr-defined]
        code = int(error.exit_code)  # type: ignore[attr-defined]
        print_error(message, kind="usage", exit_code=code, fmt=fmt)
        raise SystemExit(code) from None
    except (typer.Abort, KeyboardInterrupt):  # before or after a command's own handling
        print_error(INTERRUPTED, kind="interrupted", exit_code=EXIT_ABORTED, fmt=fmt)
        raise SystemExit(EXIT_ABORTED) from None
    except BulkleadsError as error:
        fail(error)
    except Exception as error:
        trace = scrub("".join(traceback.format_exception(error)))
        if fmt == "json":
            message = scrub(f"internal error: {type(error).__name__}: {error}")
            print_error(message, kind="internal", exit_code=EXIT_USAGE, fmt=fmt)
            print(json.dumps({"event": "traceback", "traceback": trace}), file=sys.stderr)
        else:
            print(
                f"bulkleads: internal error, please report it with this trace:\n{trace}",
                file=sys.stderr,
            )
        raise SystemExit(EXIT_USAGE) from None
