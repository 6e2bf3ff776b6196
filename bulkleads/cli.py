"""Command-line parsing and wiring only; the behaviour lives in :mod:`bulkleads.run`."""

from __future__ import annotations

import functools
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, NoReturn, ParamSpec

import typer

from . import __version__
from .console import LogFormat, Reporter, setup_logging
from .crm_v3 import OBJECTS
from .errors import EXIT_USAGE, BulkleadsError, UsageError
from .jobs import STATE_DIR_VAR, JobFolder
from .plan import PlanOptions
from .run import DEFAULT_BASE_URL, RunConfig, resume_command, retry, update, write_job_report
from .sandbox import SANDBOX_TOKEN
from .sender import SendOptions
from .target import AuthMode
from .token import ENV_VAR, Token, load_token, optional_token

P = ParamSpec("P")


def _handles_errors(command: Callable[P, None]) -> Callable[P, None]:
    """Known errors become one line on stderr and their exit code, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            command(*args, **kwargs)
        except BulkleadsError as error:
            print(f"bulkleads: error: {error}", file=sys.stderr)
            raise typer.Exit(error.exit_code) from None

    return wrapper


app = typer.Typer(
    help="Apply bulk updates to HubSpot leads from CSV or JSONL files: validated before anything "
    "is sent, paced to the portal's rate limit, retried, resumable, with a report line per row.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_INPUT = "Input (how the file is read)"
_FIELDS = "Fields (what the columns mean)"
_TARGET = "Target (where updates go)"
_PACE = "Pacing and retries"
_JOB = "Job and report"
_OUT = "Output"

TokenFile = Annotated[
    Path | None,
    typer.Option(
        "--token-file",
        help=f"File holding the access token (default: ${ENV_VAR}).",
        rich_help_panel=_TARGET,
        exists=False,
        dir_okay=False,
    ),
]
StateDir = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        envvar=STATE_DIR_VAR,
        help="Folder holding job files (default: the user's state directory, "
        "~/.local/state/bulkleads on Linux).",
        rich_help_panel=_JOB,
        show_default=False,
    ),
]
Verbose = Annotated[
    bool,
    typer.Option(
        "--verbose",
        "-v",
        help="Debug log: one line per request (never the token).",
        rich_help_panel=_OUT,
    ),
]
Timeout = Annotated[
    float,
    typer.Option(
        "--timeout",
        help="Seconds to wait for an answer before retrying.",
        min=0.01,
        rich_help_panel=_PACE,
    ),
]
Quiet = Annotated[
    bool, typer.Option("--quiet", "-q", help="Only warnings and errors.", rich_help_panel=_OUT)
]
LogFmt = Annotated[
    str,
    typer.Option(
        "--log-format",
        help="text, or json: one JSON object a line on stderr, for cron.",
        rich_help_panel=_OUT,
    ),
]
Rate = Annotated[
    float | None,
    typer.Option(
        "--rate",
        help="Requests allowed per --rate-window (default: 10 for leads-v1, 100 for crm-v3).",
        min=0.001,
        rich_help_panel=_PACE,
        show_default=False,
    ),
]
RateWindow = Annotated[
    float | None,
    typer.Option(
        "--rate-window",
        help="Seconds of the rolling window --rate applies to (default: 1 for leads-v1, "
        "10 for crm-v3).",
        show_default=False,
        min=0.001,
        rich_help_panel=_PACE,
    ),
]
Concurrency = Annotated[
    int,
    typer.Option(
        "--concurrency", help="Requests in flight at once.", min=1, max=64, rich_help_panel=_PACE
    ),
]
MaxAttempts = Annotated[
    int,
    typer.Option(
        "--max-attempts",
        help="Attempts per lead for transient failures (429, 5xx, timeouts).",
        min=1,
        max=50,
        rich_help_panel=_PACE,
    ),
]
MaxRetryTime = Annotated[
    float,
    typer.Option(
        "--max-retry-time",
        help="Seconds one lead may spend retrying.",
        min=0,
        rich_help_panel=_PACE,
    ),
]
DailyReserve = Annotated[
    int,
    typer.Option(
        "--daily-reserve",
        help="Stop (rows deferred) when the portal's daily requests remaining fall to this.",
        min=0,
        rich_help_panel=_PACE,
    ),
]


@app.command("update")
@_handles_errors
def update_command(
    input: Annotated[
        str,
        typer.Argument(
            help="CSV, TSV or JSONL file (optionally .gz), or - for stdin.", show_default=False
        ),
    ],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="csv, tsv or jsonl (default: from the file name).",
            rich_help_panel=_INPUT,
        ),
    ] = None,
    delimiter: Annotated[
        str | None,
        typer.Option(
            "--delimiter",
            help="CSV delimiter (default: sniffed among , ; tab |).",
            rich_help_panel=_INPUT,
        ),
    ] = None,
    encoding: Annotated[
        str,
        typer.Option(
            "--encoding",
            help="Text encoding: auto (UTF-8 with or without BOM, else cp1252, the "
            "encoding of Excel's plain CSV export), or a name such as utf-8 or cp1252.",
            rich_help_panel=_INPUT,
        ),
    ] = "auto",
    guid_column: Annotated[
        str | None,
        typer.Option(
            "--guid-column",
            help="Key column (default: the one named guid; id for crm-v3).",
            rich_help_panel=_FIELDS,
        ),
    ] = None,
    renames: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help='Rename a column: "Lead ID=guid", "Close date=closedAt". Repeatable.',
            rich_help_panel=_FIELDS,
        ),
    ] = None,
    ignore: Annotated[
        list[str] | None,
        typer.Option("--ignore-column", help="Drop a column. Repeatable.", rich_help_panel=_FIELDS),
    ] = None,
    clear_token: Annotated[
        str | None,
        typer.Option(
            "--clear-token",
            help="A CSV cell equal to this clears the field (e.g. NULL).",
            rich_help_panel=_FIELDS,
        ),
    ] = None,
    timezone: Annotated[
        str,
        typer.Option("--timezone", help="Zone for dates and naive times.", rich_help_panel=_FIELDS),
    ] = "UTC",
    on_conflict: Annotated[
        str,
        typer.Option(
            "--on-conflict",
            help="Two rows set one field of a lead differently: last, first or error.",
            rich_help_panel=_FIELDS,
        ),
    ] = "last",
    allow_field: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-field",
            help="Send a field normally not editable. Repeatable.",
            rich_help_panel=_FIELDS,
        ),
    ] = None,
    custom_field: Annotated[
        list[str] | None,
        typer.Option(
            "--custom-field",
            help="Send this field although it is not a standard field (a custom field of "
            "your portal). Repeatable.",
            rich_help_panel=_FIELDS,
        ),
    ] = None,
    allow_custom_fields: Annotated[
        bool,
        typer.Option(
            "--allow-custom-fields",
            help="Send every field that is not a standard one (typos of standard fields "
            "still stop the run).",
            rich_help_panel=_FIELDS,
        ),
    ] = False,
    token_file: TokenFile = None,
    base_url: Annotated[
        str,
        typer.Option(
            "--base-url",
            envvar="BULKLEADS_BASE_URL",
            help="API root; http:// only to loopback.",
            rich_help_panel=_TARGET,
        ),
    ] = DEFAULT_BASE_URL,
    api: Annotated[
        str,
        typer.Option(
            "--api",
            help="leads-v1 (PUT one lead a request) or crm-v3 (batch update "
            "of --object, up to 100 records a request).",
            rich_help_panel=_TARGET,
        ),
    ] = "leads-v1",
    crm_object: Annotated[
        str,
        typer.Option(
            "--object", help="crm-v3: contacts, companies, deals or leads.", rich_help_panel=_TARGET
        ),
    ] = "contacts",
    batch_size: Annotated[
        int,
        typer.Option(
            "--batch-size",
            help="crm-v3: records per request.",
            min=1,
            max=100,
            rich_help_panel=_TARGET,
        ),
    ] = 100,
    id_property: Annotated[
        str | None,
        typer.Option(
            "--id-property",
            help="crm-v3: update by this unique property (e.g. "
            "email); the id column holds its values.",
            rich_help_panel=_TARGET,
        ),
    ] = None,
    date_field: Annotated[
        list[str] | None,
        typer.Option(
            "--date-field",
            help="crm-v3: a property that takes dates, sent as epoch "
            "milliseconds (default: closedate). Repeatable.",
            rich_help_panel=_FIELDS,
        ),
    ] = None,
    auth: Annotated[
        str | None,
        typer.Option(
            "--auth",
            help="leads-v1: query (?access_token=, the default) or bearer (Authorization "
            "header). crm-v3 always uses bearer.",
            rich_help_panel=_TARGET,
            show_default=False,
        ),
    ] = None,
    rate: Rate = None,
    rate_window: RateWindow = None,
    concurrency: Concurrency = 4,
    max_attempts: MaxAttempts = 6,
    max_retry_time: MaxRetryTime = 300.0,
    daily_reserve: DailyReserve = 0,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="Report path (default: <input>"
            ".report.csv beside the input; .jsonl writes JSON "
            "lines).",
            rich_help_panel=_JOB,
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Read, validate and plan; send nothing; needs no token.",
            rich_help_panel=_JOB,
        ),
    ] = False,
    fresh: Annotated[
        bool,
        typer.Option(
            "--fresh", help="Start this job over instead of resuming it.", rich_help_panel=_JOB
        ),
    ] = False,
    no_backup: Annotated[
        bool,
        typer.Option(
            "--no-backup",
            help="Do not read leads before writing them: no backup (so no undo), no skipping "
            "of values already so, no --only-empty; saves one read per lead (CRM: per 100).",
            rich_help_panel=_JOB,
        ),
    ] = False,
    only_empty: Annotated[
        list[str] | None,
        typer.Option(
            "--only-empty",
            help="Write this field only where the lead has no value for it today (all: every "
            "field). Repeatable.",
            rich_help_panel=_FIELDS,
        ),
    ] = None,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Read every updated lead back; one whose values did not stick is failed.",
            rich_help_panel=_JOB,
        ),
    ] = False,
    state_dir: StateDir = None,
    timeout: Timeout = 30.0,
    quiet: Quiet = False,
    verbose: Verbose = False,
    log_format: LogFmt = "text",
) -> None:
    """Update the leads listed in INPUT; running the same command again resumes the job."""
    token = optional_token(token_file) if dry_run else load_token(token_file)
    reporter = _reporter(log_format, quiet, token, verbose)
    config = RunConfig(
        input=input,
        token=token,
        base_url=base_url,
        auth=_auth(auth, api),
        api=_choice(api, ("leads-v1", "crm-v3"), "--api"),  # type: ignore[arg-type]
        crm_object=_choice(crm_object, OBJECTS, "--object"),  # type: ignore[arg-type]
        batch_size=batch_size,
        id_property=id_property,
        date_fields=tuple(date_field) if date_field else ("closedate",),
        fmt=_choice(fmt, ("csv", "tsv", "jsonl"), "--format") if fmt else None,  # type: ignore[arg-type]
        encoding=encoding,
        delimiter=_delimiter(delimiter),
        plan=PlanOptions(
            guid_column=guid_column,
            renames=tuple(_pair(m) for m in renames or ()),
            ignore=tuple(ignore or ()),
            clear_token=clear_token,
            timezone=timezone,
            on_conflict=_choice(on_conflict, ("last", "first", "error"), "--on-conflict"),  # type: ignore[arg-type]
            allow_fields=tuple(allow_field or ()),
            custom_fields=tuple(custom_field or ()),
            allow_custom_fields=allow_custom_fields,
        ),
        rate=rate,
        rate_window=rate_window,
        timeout=timeout,
        send=_send_options(concurrency, max_attempts, max_retry_time, daily_reserve),
        report=report,
        dry_run=dry_run,
        fresh=fresh,
        backup=_backup(no_backup, only_empty),
        only_empty=tuple(only_empty or ()),
        verify=verify,
        state_dir=state_dir,
        command=resume_command(),
    )
    raise typer.Exit(update(config, reporter))


@app.command("retry")
@_handles_errors
def retry_command(
    job: Annotated[
        str,
        typer.Argument(
            help="Job id (or prefix), job file, or the job's report.", show_default=False
        ),
    ],
    outcome: Annotated[
        str, typer.Option("--outcome", help="Which rows to send again: failed or not_sent.")
    ] = "failed",
    token_file: TokenFile = None,
    rate: Rate = None,
    rate_window: RateWindow = None,
    concurrency: Concurrency = 4,
    max_attempts: MaxAttempts = 6,
    max_retry_time: MaxRetryTime = 300.0,
    daily_reserve: DailyReserve = 0,
    state_dir: StateDir = None,
    timeout: Timeout = 30.0,
    quiet: Quiet = False,
    verbose: Verbose = False,
    log_format: LogFmt = "text",
) -> None:
    """Send again the leads of a job that ended failed (or not_sent), then refresh its report."""
    chosen = _choice(outcome, ("failed", "not_sent"), "--outcome")
    token = load_token(token_file)
    reporter = _reporter(log_format, quiet, token, verbose)
    config = RunConfig(
        input="",
        token=token,
        rate=rate,
        rate_window=rate_window,
        timeout=timeout,
        send=_send_options(concurrency, max_attempts, max_retry_time, daily_reserve),
        state_dir=state_dir,
    )
    raise typer.Exit(retry(job, chosen, config, reporter))


@app.command("undo")
@_handles_errors
def undo_command(
    job: Annotated[
        str,
        typer.Argument(
            help="Job id (or prefix), job file, or the job's report.", show_default=False
        ),
    ],
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Write the previous values back even where a lead changed since the job.",
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Read the leads and show what the undo would write."),
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report", help="Report path (default: <job report>.undo.report.csv beside it)."
        ),
    ] = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Start this undo over instead of resuming it.")
    ] = False,
    verify: Annotated[
        bool, typer.Option("--verify", help="Read every restored lead back.")
    ] = False,
    token_file: TokenFile = None,
    rate: Rate = None,
    rate_window: RateWindow = None,
    concurrency: Concurrency = 4,
    max_attempts: MaxAttempts = 6,
    max_retry_time: MaxRetryTime = 300.0,
    daily_reserve: DailyReserve = 0,
    state_dir: StateDir = None,
    timeout: Timeout = 30.0,
    quiet: Quiet = False,
    verbose: Verbose = False,
    log_format: LogFmt = "text",
) -> None:
    """Put back the values a job overwrote: a job of its own (resumable, paced, reported),
    which skips a lead changed since the job unless --force. Undoing an undo restores the job.

    Example: bulkleads undo closes.report.csv --dry-run, then bulkleads undo closes.report.csv
    """
    from .undo import undo

    token = load_token(token_file)
    reporter = _reporter(log_format, quiet, token, verbose)
    config = RunConfig(
        input="",
        token=token,
        rate=rate,
        rate_window=rate_window,
        timeout=timeout,
        send=_send_options(concurrency, max_attempts, max_retry_time, daily_reserve),
        report=report,
        dry_run=dry_run,
        fresh=fresh,
        verify=verify,
        force=force,
        state_dir=state_dir,
        command=resume_command(),
    )
    raise typer.Exit(undo(job, config, reporter))


@app.command("report")
@_handles_errors
def report_command(
    job: Annotated[
        str,
        typer.Argument(
            help="Job id (or prefix), job file, or the job's report.", show_default=False
        ),
    ],
    report: Annotated[
        Path | None,
        typer.Option("--report", help="Where to write it (default: where the job wrote it)."),
    ] = None,
    state_dir: StateDir = None,
    quiet: Quiet = False,
    log_format: LogFmt = "text",
) -> None:
    """Write a job's report again from its job file."""
    raise typer.Exit(write_job_report(job, state_dir, report, _reporter(log_format, quiet, None)))


@app.command("jobs")
@_handles_errors
def jobs_command(state_dir: StateDir = None) -> None:
    """List the jobs in the state folder with their progress.

    Jobs live in the user's state directory (~/.local/state/bulkleads on Linux, or
    $BULKLEADS_STATE_DIR, or --state-dir), whatever folder a command is run from."""
    from rich.console import Console
    from rich.table import Table

    table = Table("job", "input", "rows", "updated", "to send", "failed", "other", "report")
    for info in JobFolder(state_dir).list():
        if info.damage is not None:
            table.add_row(info.job_id, "unreadable", "", "", "", "", "", info.damage)
            continue
        states = info.states
        left = sum(states.get(s, 0) for s in ("pending", "inflight", "deferred", "not_sent"))
        other = sum(states.get(s, 0) for s in ("skipped", "invalid"))
        table.add_row(
            f"{info.job_id} (running)" if info.running else info.job_id,
            str(info.meta.get("input", "")),
            str(info.rows),
            str(states.get("done", 0)),
            str(left),
            str(states.get("failed", 0)),
            str(other),
            str(info.meta.get("report", "")),
        )
    Console().print(table)


@app.command("sandbox")
@_handles_errors
def sandbox_command(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port; 0 picks a free one.", min=0, max=65535)] = 0,
    seed: Annotated[
        Path | None,
        typer.Option(help="Leads to start with: JSON, JSONL or CSV with a guid column."),
    ] = None,
    state: Annotated[
        Path | None, typer.Option(help="Load at start if present, save on exit.")
    ] = None,
    token: Annotated[
        str,
        typer.Option(help="The token the sandbox accepts (a sandbox credential, not a real one)."),
    ] = SANDBOX_TOKEN,
    limit: Annotated[int, typer.Option(help="Requests allowed per --window.", min=1)] = 10,
    window: Annotated[float, typer.Option(help="Rolling window in seconds.", min=0.001)] = 1.0,
    daily: Annotated[int, typer.Option(help="Requests allowed per day.", min=0)] = 40_000,
    retry_after: Annotated[
        bool, typer.Option("--retry-after", help="Send Retry-After on 429.")
    ] = False,
    fail_rate: Annotated[
        float, typer.Option(help="Share of requests answered 5xx.", min=0, max=1)
    ] = 0.0,
    drop_rate: Annotated[
        float, typer.Option(help="Share applied, then the connection dropped.", min=0, max=1)
    ] = 0.0,
    noop_rate: Annotated[
        float,
        typer.Option(
            help="Share of writes answered as applied but not applied (HubSpot's silent no-op; "
            "--verify catches it).",
            min=0,
            max=1,
        ),
    ] = 0.0,
    latency_ms: Annotated[float, typer.Option(help="Delay before each answer.", min=0)] = 0.0,
    crm_seed: Annotated[
        list[str] | None,
        typer.Option(
            "--crm-seed",
            help="CRM v3 records to start with, as OBJECT=FILE (e.g. "
            "contacts=contacts.json; an id column plus properties). Repeatable.",
        ),
    ] = None,
    crm_properties: Annotated[
        list[str] | None,
        typer.Option(
            "--crm-properties",
            help="CRM v3 property definitions over the defaults, as OBJECT=FILE (a JSON list "
            "in HubSpot's shape: name, type, options, calculated, modificationMetadata). "
            "Repeatable.",
        ),
    ] = None,
    unlimited: Annotated[
        bool, typer.Option("--unlimited", help="No rate or daily limit (benchmarks).")
    ] = False,
) -> None:
    """Run a local server that behaves like HubSpot's Leads v1 API, for rehearsals and tests."""
    try:
        from .sandbox.app import SandboxConfig
        from .sandbox.server import serve
    except ImportError:  # pragma: no cover - depends on how bulkleads was installed
        _fail(UsageError("the sandbox needs its extra: pip install 'bulkleads[sandbox]'"))
    serve(
        SandboxConfig(
            host=host,
            port=port,
            seed=seed,
            state=state,
            token=token,
            limit=None if unlimited else limit,
            window=window,
            daily=None if unlimited else daily,
            retry_after=retry_after,
            fail_rate=fail_rate,
            drop_rate=drop_rate,
            noop_rate=noop_rate,
            latency=latency_ms / 1000,
            crm_seeds=_object_files(crm_seed, "--crm-seed"),
            crm_properties=_object_files(crm_properties, "--crm-properties"),
        )
    )


@app.callback(invoke_without_command=True)
def _main(
    version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False,
) -> None:
    if version:
        typer.echo(f"bulkleads {__version__}")
        raise typer.Exit(0)


def _reporter(log_format: str, quiet: bool, token: Token | None, verbose: bool = False) -> Reporter:
    fmt: LogFormat = _choice(log_format, ("text", "json"), "--log-format")  # type: ignore[assignment]
    setup_logging(fmt, quiet=quiet, token=token, verbose=verbose)
    return Reporter(fmt, quiet=quiet)


def _backup(no_backup: bool, only_empty: list[str] | None) -> bool:
    if no_backup and only_empty:
        raise UsageError(
            "--only-empty needs the current values, which --no-backup does not read; drop one"
        )
    return not no_backup


def _auth(auth: str | None, api: str) -> AuthMode:
    if auth is None:
        return "query" if api == "leads-v1" else "bearer"
    if api == "crm-v3" and auth == "query":
        raise UsageError("CRM v3 takes the token in the Authorization header; drop --auth query")
    return _choice(auth, ("query", "bearer"), "--auth")  # type: ignore[return-value]


def _send_options(
    concurrency: int, max_attempts: int, max_retry_time: float, daily_reserve: int
) -> SendOptions:
    return SendOptions(
        concurrency=concurrency,
        max_attempts=max_attempts,
        max_retry_seconds=max_retry_time,
        daily_reserve=daily_reserve,
    )


def _choice(value: str, allowed: tuple[str, ...], flag: str) -> str:
    if value not in allowed:
        raise UsageError(f"{flag} takes one of {', '.join(allowed)}, not {value!r}")
    return value


def _pair(
    text: str, flag: str = "--map", form: str = '"COLUMN=field", e.g. "Lead ID=guid"'
) -> tuple[str, str]:
    source, sep, target = text.partition("=")
    if not sep or not source.strip() or not target.strip():
        raise UsageError(f"{flag} takes {form}; got {text!r}")
    return source, target


def _object_files(values: list[str] | None, flag: str) -> dict[str, Path]:
    pairs = (_pair(text, flag, "OBJECT=FILE") for text in values or ())
    return {name.strip(): Path(path) for name, path in pairs}


def _delimiter(value: str | None) -> str | None:
    if value is None:
        return None
    value = {"\\t": "\t", "tab": "\t"}.get(value, value)
    if len(value) != 1:
        raise UsageError(f"--delimiter takes one character (or 'tab'), not {value!r}")
    return value


def _fail(error: BulkleadsError) -> NoReturn:
    print(f"bulkleads: error: {error}", file=sys.stderr)
    raise SystemExit(error.exit_code)


def main() -> None:
    """Console entry point: known errors become one line and an exit code, never a traceback."""
    try:
        app(standalone_mode=True)
    except BulkleadsError as error:
        _fail(error)
    except KeyboardInterrupt:
        print("bulkleads: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except Exception as error:
        text = "".join(traceback.format_exception(error))
        print(
            f"bulkleads: internal error, please report it with this trace:\n{_scrub(text)}",
            file=sys.stderr,
        )
        raise SystemExit(EXIT_USAGE) from None


def _scrub(text: str) -> str:
    """Redact the token from a trace even when the failure came before it was loaded."""
    import os

    value = os.environ.get(ENV_VAR, "").strip()
    return text.replace(value, "***") if value else text
