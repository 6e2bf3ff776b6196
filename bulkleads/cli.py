"""Command-line parsing and wiring only; the behaviour lives in :mod:`bulkleads.run`."""

from __future__ import annotations

import functools
import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Final, Literal, NoReturn, ParamSpec
from urllib.parse import urlsplit

import typer

from . import __version__
from .console import (
    LOG_FORMAT_VAR,
    OUTCOMES,
    LogFormat,
    Reporter,
    plural,
    print_error,
    setup_logging,
)
from .errors import EXIT_USAGE, BulkleadsError, UsageError
from .hubspot import ApiOptions
from .hubspot import choose as choose_api
from .hubspot import from_meta as api_from_meta
from .jobs import STATE_DIR_VAR, JobFolder, JobInfo, parse_age
from .plan import PlanOptions
from .profiles import load_profile
from .report import ReportDialect, RowOutcome, count_outcomes
from .run import (
    DEFAULT_BASE_URL,
    DEFAULT_SAMPLE,
    RunConfig,
    resume_command,
    retry,
    update,
    write_job_report,
)
from .sandbox import SANDBOX_TOKEN
from .sender import SendOptions
from .store import JobStore
from .token import ENV_VAR, Token, load_token, optional_token

P = ParamSpec("P")


def _handles_errors(command: Callable[P, None]) -> Callable[P, None]:
    """Known errors become one line on stderr (one JSON object with --log-format json) and
    their exit code, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            command(*args, **kwargs)
        except BulkleadsError as error:
            fmt = "json" if kwargs.get("log_format") == "json" else _format_asked()
            kind = type(error).__name__
            print_error(str(error), kind=kind, exit_code=error.exit_code, fmt=fmt)
            raise typer.Exit(error.exit_code) from None

    return wrapper


# click's error base class, wherever this typer takes click from (typer 0.29 vendors a copy).
_CLICK_ERRORS: tuple[type[Exception], ...] = tuple(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)


def _format_asked(argv: list[str] | None = None) -> LogFormat:
    """The log format a command line asks for, known before it is parsed (so that a usage
    error is JSON too): ``--log-format json`` or ``$BULKLEADS_LOG_FORMAT``."""
    args = sys.argv[1:] if argv is None else argv
    for i, arg in enumerate(args):
        if arg == "--log-format=json" or (
            arg == "--log-format" and args[i + 1 : i + 2] == ["json"]
        ):
            return "json"
    return "json" if os.environ.get(LOG_FORMAT_VAR, "").strip() == "json" else "text"


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
JobArg = Annotated[
    str,
    typer.Argument(
        help="Job id (or prefix), job file, the job's report, or its input file.",
        show_default=False,
        metavar="JOB",
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
        metavar="DIR",
    ),
]
Verbose = Annotated[
    bool,
    typer.Option(
        "--verbose",
        "-v",
        help="Debug log: one line per request (never the token).",
        rich_help_panel=_OUT,
        metavar="",
    ),
]
Timeout = Annotated[
    float,
    typer.Option(
        "--timeout",
        help="Seconds to wait for an answer before retrying.",
        min=0.01,
        rich_help_panel=_PACE,
        metavar="SECONDS",
    ),
]
Quiet = Annotated[
    bool,
    typer.Option(
        "--quiet",
        "-q",
        help="Only warnings and errors.",
        rich_help_panel=_OUT,
        metavar="",
    ),
]
LogFmt = Annotated[
    Literal["text", "json"],
    typer.Option(
        "--log-format",
        envvar=LOG_FORMAT_VAR,
        help="text, or json: every line on stderr one JSON object (errors too), for cron.",
        rich_help_panel=_OUT,
    ),
]
SummaryFile = Annotated[
    Path | None,
    typer.Option(
        "--summary",
        help="Also write the final summary (every count, the job, the report, the exit code) "
        "to this file as one JSON object, replaced atomically, for monitoring.",
        rich_help_panel=_OUT,
        metavar="PATH",
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
        metavar="N",
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
        metavar="SECONDS",
    ),
]
Concurrency = Annotated[
    int,
    typer.Option(
        "--concurrency",
        help="Requests in flight at once.",
        min=1,
        max=64,
        rich_help_panel=_PACE,
        metavar="N",
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
        metavar="N",
    ),
]
MaxRetryTime = Annotated[
    float,
    typer.Option(
        "--max-retry-time",
        help="Seconds one lead may spend retrying.",
        min=0,
        rich_help_panel=_PACE,
        metavar="SECONDS",
    ),
]
DailyReserve = Annotated[
    int,
    typer.Option(
        "--daily-reserve",
        help="Stop (rows deferred) when the portal's daily requests remaining fall to this.",
        min=0,
        rich_help_panel=_PACE,
        metavar="N",
    ),
]


@app.command("update")
@_handles_errors
def update_command(
    ctx: typer.Context,
    input: Annotated[
        str,
        typer.Argument(
            help="CSV, TSV or JSONL file (optionally .gz), or - for stdin.",
            show_default=False,
            metavar="INPUT",
        ),
    ],
    fmt: Annotated[
        Literal["csv", "tsv", "jsonl", "xlsx"] | None,
        typer.Option(
            "--format",
            help="csv, tsv, jsonl or xlsx (default: from the file name).",
            rich_help_panel=_INPUT,
        ),
    ] = None,
    sheet: Annotated[
        str | None,
        typer.Option(
            "--sheet",
            help=".xlsx: the sheet to read (default: the first).",
            rich_help_panel=_INPUT,
            metavar="NAME",
        ),
    ] = None,
    delimiter: Annotated[
        str | None,
        typer.Option(
            "--delimiter",
            help="CSV delimiter (default: sniffed among , ; tab |).",
            rich_help_panel=_INPUT,
            metavar="CHAR",
        ),
    ] = None,
    encoding: Annotated[
        str,
        typer.Option(
            "--encoding",
            help="Text encoding: auto (UTF-8 with or without BOM, else cp1252, the "
            "encoding of Excel's plain CSV export), or a name such as utf-8 or cp1252.",
            rich_help_panel=_INPUT,
            metavar="NAME",
        ),
    ] = "auto",
    guid_column: Annotated[
        str | None,
        typer.Option(
            "--guid-column",
            help="Key column (default: the one named guid; id for crm-v3).",
            rich_help_panel=_FIELDS,
            metavar="TEXT",
        ),
    ] = None,
    renames: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help='Rename a column: "Lead ID=guid", "Close date=closedAt". Repeatable.',
            rich_help_panel=_FIELDS,
            metavar="COLUMN=FIELD",
        ),
    ] = None,
    ignore: Annotated[
        list[str] | None,
        typer.Option(
            "--ignore-column",
            help="Drop a column. Repeatable.",
            rich_help_panel=_FIELDS,
            metavar="NAME",
        ),
    ] = None,
    date_format: Annotated[
        list[str] | None,
        typer.Option(
            "--date-format",
            help="strptime format of local dates in date fields, e.g. %d/%m/%Y. Repeatable; a "
            "date two formats read differently is an invalid row.",
            rich_help_panel=_FIELDS,
            metavar="FORMAT",
        ),
    ] = None,
    clear_token: Annotated[
        str | None,
        typer.Option(
            "--clear-token",
            help="A CSV cell equal to this clears the field (e.g. NULL).",
            rich_help_panel=_FIELDS,
            metavar="TEXT",
        ),
    ] = None,
    timezone: Annotated[
        str,
        typer.Option(
            "--timezone",
            help="Zone for dates and naive times.",
            rich_help_panel=_FIELDS,
            metavar="ZONE",
        ),
    ] = "UTC",
    on_conflict: Annotated[
        Literal["last", "first", "error"],
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
            metavar="NAME",
        ),
    ] = None,
    custom_field: Annotated[
        list[str] | None,
        typer.Option(
            "--custom-field",
            help="Send this field although it is not a standard field (a custom field of "
            "your portal). Repeatable.",
            rich_help_panel=_FIELDS,
            metavar="NAME",
        ),
    ] = None,
    allow_custom_fields: Annotated[
        bool,
        typer.Option(
            "--allow-custom-fields",
            help="Send every field that is not a standard one (typos of standard fields "
            "still stop the run).",
            rich_help_panel=_FIELDS,
            metavar="",
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
            metavar="URL",
        ),
    ] = DEFAULT_BASE_URL,
    api: Annotated[
        Literal["leads-v1", "crm-v3"],
        typer.Option(
            "--api",
            help="leads-v1 (PUT one lead a request) or crm-v3 (batch update "
            "of --object, up to 100 records a request).",
            rich_help_panel=_TARGET,
        ),
    ] = "leads-v1",
    crm_object: Annotated[
        Literal["contacts", "companies", "deals", "leads"],
        typer.Option(
            "--object",
            help="crm-v3: contacts, companies, deals or leads.",
            rich_help_panel=_TARGET,
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
            metavar="N",
        ),
    ] = 100,
    id_property: Annotated[
        str | None,
        typer.Option(
            "--id-property",
            help="crm-v3: update by this unique property (e.g. "
            "email); the id column holds its values.",
            rich_help_panel=_TARGET,
            metavar="TEXT",
        ),
    ] = None,
    date_field: Annotated[
        list[str] | None,
        typer.Option(
            "--date-field",
            help="crm-v3: a property that takes dates, sent as epoch "
            "milliseconds (default: closedate). Repeatable.",
            rich_help_panel=_FIELDS,
            metavar="NAME",
        ),
    ] = None,
    auth: Annotated[
        Literal["query", "bearer"] | None,
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
            metavar="PATH",
        ),
    ] = None,
    report_dialect: Annotated[
        ReportDialect | None,
        typer.Option(
            "--report-dialect",
            help="How the report is written (default: like the input: its delimiter, and a "
            "BOM when it had one or was not UTF-8): excel (comma, BOM), csv, tsv or jsonl.",
            rich_help_panel=_JOB,
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Read, validate and plan; send nothing; needs no token.",
            rich_help_panel=_JOB,
            metavar="",
        ),
    ] = False,
    fresh: Annotated[
        bool,
        typer.Option(
            "--fresh",
            help="Start this job over instead of resuming it.",
            rich_help_panel=_JOB,
            metavar="",
        ),
    ] = False,
    no_backup: Annotated[
        bool,
        typer.Option(
            "--no-backup",
            help="Do not read leads before writing them: no backup (so no undo), no skipping "
            "of values already so, no --only-empty; saves one read per lead (CRM: per 100).",
            rich_help_panel=_JOB,
            metavar="",
        ),
    ] = False,
    only_empty: Annotated[
        list[str] | None,
        typer.Option(
            "--only-empty",
            help="Write this field only where the lead has no value for it today (all: every "
            "field). Repeatable.",
            rich_help_panel=_FIELDS,
            metavar="FIELD",
        ),
    ] = None,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Read every updated lead back; one whose values did not stick is failed.",
            rich_help_panel=_JOB,
            metavar="",
        ),
    ] = False,
    sample: Annotated[
        str,
        typer.Option(
            "--sample",
            help="--dry-run with a token: read this many records, spread evenly through the "
            "file, and project what would change from them; 'all' reads every record.",
            rich_help_panel=_JOB,
            metavar="N|all",
        ),
    ] = str(DEFAULT_SAMPLE),
    state_dir: StateDir = None,
    timeout: Timeout = 30.0,
    quiet: Quiet = False,
    verbose: Verbose = False,
    log_format: LogFmt = "text",
    summary: SummaryFile = None,
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            help="Settings of a portal from the [profile.NAME] table of config.toml in the "
            "user's config directory ($BULKLEADS_CONFIG): base_url, api, object, auth, rate, "
            "rate_window, concurrency, token_file, token_env, map, custom_fields, date_formats, "
            "report_dialect. Flags win over it.",
            rich_help_panel=_TARGET,
            metavar="NAME",
        ),
    ] = None,
) -> None:
    """Update the leads listed in INPUT; running the same command again resumes the job.

    Examples: bulkleads update closes.csv --dry-run (validate, plan, show what would change);
    bulkleads update closes.csv (back up, send, report); bulkleads update contacts.xlsx --api
    crm-v3 --object contacts --sheet Export
    """
    var = ENV_VAR
    if profile is not None:  # a flag given wins over the profile
        settings, given = load_profile(profile), _given(ctx)
        base_url = settings.base_url if settings.base_url and "base_url" not in given else base_url
        api = settings.api if settings.api and "api" not in given else api
        crm_object = (
            settings.object if settings.object and "crm_object" not in given else crm_object
        )
        auth = settings.auth if settings.auth and "auth" not in given else auth
        if settings.report_dialect and "report_dialect" not in given:
            report_dialect = settings.report_dialect
        rate = settings.rate if settings.rate and "rate" not in given else rate
        if settings.rate_window and "rate_window" not in given:
            rate_window = settings.rate_window
        if settings.concurrency and "concurrency" not in given:
            concurrency = settings.concurrency
        if settings.map and "renames" not in given:
            renames = [f"{column}={name}" for column, name in settings.map.items()]
        if settings.custom_fields and "custom_field" not in given:
            custom_field = list(settings.custom_fields)
        if settings.date_formats and "date_format" not in given:
            date_format = list(settings.date_formats)
        if settings.token_file and "token_file" not in given:
            token_file = Path(settings.token_file).expanduser()
        elif settings.token_env and token_file is None:
            var = settings.token_env
    token = optional_token(token_file, var=var) if dry_run else load_token(token_file, var=var)
    reporter = _reporter(log_format, quiet, token, verbose, summary)
    config = RunConfig(
        input=input,
        token=token,
        base_url=base_url,
        api=choose_api(
            api,
            ApiOptions(
                auth=auth,
                object=crm_object,
                batch_size=batch_size,
                id_property=id_property,
                date_fields=tuple(date_field) if date_field else ("closedate",),
            ),
        ),
        fmt=fmt,
        sheet=sheet,
        encoding=encoding,
        delimiter=_delimiter(delimiter),
        plan=PlanOptions(
            guid_column=guid_column,
            renames=tuple(_pair(m) for m in renames or ()),
            ignore=tuple(ignore or ()),
            clear_token=clear_token,
            timezone=timezone,
            on_conflict=on_conflict,
            allow_fields=tuple(allow_field or ()),
            custom_fields=tuple(custom_field or ()),
            date_formats=tuple(date_format or ()),
            allow_custom_fields=allow_custom_fields,
        ),
        rate=rate,
        rate_window=rate_window,
        timeout=timeout,
        send=_send_options(concurrency, max_attempts, max_retry_time, daily_reserve),
        report=report,
        report_dialect=report_dialect,
        dry_run=dry_run,
        fresh=fresh,
        backup=_backup(no_backup, only_empty),
        only_empty=tuple(only_empty or ()),
        verify=verify,
        sample=_sample(sample),
        state_dir=state_dir,
        command=resume_command(),
    )
    raise typer.Exit(update(config, reporter))


@app.command("retry")
@_handles_errors
def retry_command(
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
    summary: SummaryFile = None,
) -> None:
    """Send again what can succeed: leads not sent (token refused) and failures whose last answer
    was transient (429, 5xx, timeout, connection); then refresh the report.

    Example: bulkleads retry closes.report.csv   (after an outage, or a fixed token)
    """
    token = load_token(token_file)
    reporter = _reporter(log_format, quiet, token, verbose, summary)
    config = RunConfig(
        input="",
        token=token,
        rate=rate,
        rate_window=rate_window,
        timeout=timeout,
        send=_send_options(concurrency, max_attempts, max_retry_time, daily_reserve),
        state_dir=state_dir,
    )
    raise typer.Exit(retry(job, config, reporter, all_failed=all_failed))


@app.command("undo")
@_handles_errors
def undo_command(
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
    summary: SummaryFile = None,
) -> None:
    """Put back the values a job overwrote: a job of its own (resumable, paced, reported),
    which skips a lead changed since the job unless --force. Undoing an undo restores the job.

    Example: bulkleads undo closes.report.csv --dry-run, then bulkleads undo closes.report.csv
    """
    from .undo import undo

    token = load_token(token_file)
    reporter = _reporter(log_format, quiet, token, verbose, summary)
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
            _reporter(log_format, quiet, None, summary=summary),
            page=html,
        )
    )


jobs_app = typer.Typer(invoke_without_command=True)
app.add_typer(jobs_app, name="jobs")
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
@_handles_errors
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
@_handles_errors
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
    elif counts[RowOutcome.FAILED] or counts[RowOutcome.INVALID] or counts[RowOutcome.NOT_SENT]:
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
        **{k: counts[k] for k in OUTCOMES[:-1]},
    )
    return row


@app.command("sandbox")
@_handles_errors
def sandbox_command(
    host: Annotated[
        str,
        typer.Option(
            help="Address to listen on.",
            metavar="TEXT",
        ),
    ] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option(
            help="Port; 0 picks a free one.",
            min=0,
            max=65535,
            metavar="N",
        ),
    ] = 0,
    seed: Annotated[
        Path | None,
        typer.Option(
            help="Leads to start with: JSON, JSONL or CSV with a guid column.",
            metavar="PATH",
        ),
    ] = None,
    state: Annotated[
        Path | None,
        typer.Option(
            help="Load at start if present, save on exit.",
            metavar="PATH",
        ),
    ] = None,
    token: Annotated[
        str,
        typer.Option(
            help="The token the sandbox accepts (a sandbox credential, not a real one).",
            metavar="TEXT",
        ),
    ] = SANDBOX_TOKEN,
    limit: Annotated[
        int,
        typer.Option(
            help="Requests allowed per --window.",
            min=1,
            metavar="N",
        ),
    ] = 10,
    window: Annotated[
        float,
        typer.Option(
            help="Rolling window in seconds.",
            min=0.001,
            metavar="SECONDS",
        ),
    ] = 1.0,
    daily: Annotated[
        int,
        typer.Option(
            help="Requests allowed per day.",
            min=0,
            metavar="N",
        ),
    ] = 40_000,
    retry_after: Annotated[
        bool,
        typer.Option(
            "--retry-after",
            help="Send Retry-After on 429.",
            metavar="",
        ),
    ] = False,
    fail_rate: Annotated[
        float,
        typer.Option(
            help="Share of requests answered 5xx.",
            min=0,
            max=1,
            metavar="SECONDS",
        ),
    ] = 0.0,
    drop_rate: Annotated[
        float,
        typer.Option(
            help="Share applied, then the connection dropped.",
            min=0,
            max=1,
            metavar="SECONDS",
        ),
    ] = 0.0,
    noop_rate: Annotated[
        float,
        typer.Option(
            help="Share of writes answered as applied but not applied (HubSpot's silent no-op; "
            "--verify catches it).",
            min=0,
            max=1,
            metavar="SECONDS",
        ),
    ] = 0.0,
    latency_ms: Annotated[
        float,
        typer.Option(
            help="Delay before each answer.",
            min=0,
            metavar="SECONDS",
        ),
    ] = 0.0,
    crm_seed: Annotated[
        list[str] | None,
        typer.Option(
            "--crm-seed",
            help="CRM v3 records to start with, as OBJECT=FILE (e.g. "
            "contacts=contacts.json; an id column plus properties). Repeatable.",
            metavar="OBJECT=FILE",
        ),
    ] = None,
    crm_properties: Annotated[
        list[str] | None,
        typer.Option(
            "--crm-properties",
            help="CRM v3 property definitions over the defaults, as OBJECT=FILE (a JSON list "
            "in HubSpot's shape: name, type, options, calculated, modificationMetadata). "
            "Repeatable.",
            metavar="OBJECT=FILE",
        ),
    ] = None,
    unlimited: Annotated[
        bool,
        typer.Option(
            "--unlimited",
            help="No rate or daily limit (benchmarks).",
            metavar="",
        ),
    ] = False,
) -> None:
    """Run a local server that behaves like HubSpot (Leads v1 and CRM v3), for rehearsals
    and tests. Its first line on stdout is its URL.

    While it runs, POST /__sandbox/config takes a JSON object with any of: daily (requests a
    day, null for no cap), reset_daily (true), fail_rate, drop_rate, noop_rate (0 to 1),
    latency_ms (milliseconds) and retry_after (true or false). GET /__sandbox/stats and
    GET /__sandbox/state show what it received and holds.

    Example: bulkleads sandbox --seed sample_data/seed.json --limit 100 --window 10
    """
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


def _reporter(
    fmt: LogFormat,
    quiet: bool,
    token: Token | None,
    verbose: bool = False,
    summary: Path | None = None,
) -> Reporter:
    setup_logging(fmt, quiet=quiet, token=token, verbose=verbose)
    return Reporter(fmt, quiet=quiet, summary_path=summary)


def _given(ctx: typer.Context) -> set[str]:
    """The parameters given on the command line or by an environment variable."""
    given = set()
    for name in ctx.params:
        source = ctx.get_parameter_source(name)
        if source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP"):
            given.add(name)
    return given


def _sample(text: str) -> int | None:
    """``--sample``: a positive count, or None for every record."""
    if text.strip().lower() == "all":
        return None
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise UsageError(f"--sample {text!r}: give a number of records (1 or more) or 'all'")
    return count


def _backup(no_backup: bool, only_empty: list[str] | None) -> bool:
    if no_backup and only_empty:
        raise UsageError(
            "--only-empty needs the current values, which --no-backup does not read; drop one"
        )
    return not no_backup


def _send_options(
    concurrency: int, max_attempts: int, max_retry_time: float, daily_reserve: int
) -> SendOptions:
    return SendOptions(
        concurrency=concurrency,
        max_attempts=max_attempts,
        max_retry_seconds=max_retry_time,
        daily_reserve=daily_reserve,
    )


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
    print_error(
        str(error), kind=type(error).__name__, exit_code=error.exit_code, fmt=_format_asked()
    )
    raise SystemExit(error.exit_code)


def main() -> None:
    """Console entry point: known errors become one line and an exit code, never a traceback.
    With --log-format json every line is a JSON object: usage errors and crashes too."""
    fmt = _format_asked()
    try:
        if fmt == "text":
            app(standalone_mode=True)  # prints click's errors itself, and exits
            return
        code = app(standalone_mode=False)  # click's errors come back here, to print as JSON
        raise SystemExit(code if isinstance(code, int) else 0)
    except _CLICK_ERRORS as error:
        message = error.format_message()  # type: ignore[attr-defined]
        code = int(error.exit_code)  # type: ignore[attr-defined]
        print_error(message, kind="usage", exit_code=code, fmt=fmt)
        raise SystemExit(code) from None
    except typer.Abort:
        print_error("interrupted", kind="interrupted", exit_code=130, fmt=fmt)
        raise SystemExit(130) from None
    except BulkleadsError as error:
        _fail(error)
    except KeyboardInterrupt:
        print_error("interrupted", kind="interrupted", exit_code=130, fmt=fmt)
        raise SystemExit(130) from None
    except Exception as error:
        trace = _scrub("".join(traceback.format_exception(error)))
        if fmt == "json":
            message = _scrub(f"internal error: {type(error).__name__}: {error}")
            print_error(message, kind="internal", exit_code=EXIT_USAGE, fmt=fmt)
            print(json.dumps({"event": "traceback", "traceback": trace}), file=sys.stderr)
        else:
            print(
                f"bulkleads: internal error, please report it with this trace:\n{trace}",
                file=sys.stderr,
            )
        raise SystemExit(EXIT_USAGE) from None


def _scrub(text: str) -> str:
    """Redact the token from a trace even when the failure came before it was loaded."""
    import os

    value = os.environ.get(ENV_VAR, "").strip()
    return text.replace(value, "***") if value else text
