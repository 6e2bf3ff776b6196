"""Flags several commands share, declared once, and the helpers that turn flags into values."""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final, Literal, TypeVar, cast, get_type_hints

import typer

from bulkleads.cli.profiles import load_profile
from bulkleads.errors import JobError, UsageError
from bulkleads.jobstore.folder import STATE_DIR_VAR, JobFolder
from bulkleads.jobstore.meta import JobMeta
from bulkleads.jobstore.store import JobStore
from bulkleads.report.screen import LOG_FORMAT_VAR, LogFormat, Reporter, setup_logging
from bulkleads.report.summary import check_summary_path
from bulkleads.send.options import Pace
from bulkleads.send.pool import SendOptions
from bulkleads.token import ENV_VAR, Token

PANEL_INPUT = "Input (how the file is read)"
PANEL_FIELDS = "Fields (what the columns mean)"
PANEL_TARGET = "Target (where updates go)"
PANEL_PACE = "Pacing and retries"
PANEL_JOB = "Job and report"
PANEL_OUT = "Output"

TokenFile = Annotated[
    Path | None,
    typer.Option(
        "--token-file",
        help=f"File holding the access token (default: ${ENV_VAR}).",
        rich_help_panel=PANEL_TARGET,
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
        rich_help_panel=PANEL_JOB,
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
        rich_help_panel=PANEL_OUT,
        metavar="",
    ),
]
Timeout = Annotated[
    float,
    typer.Option(
        "--timeout",
        help="Seconds to wait for an answer before retrying.",
        min=0.01,
        rich_help_panel=PANEL_PACE,
        metavar="SECONDS",
    ),
]
Quiet = Annotated[
    bool,
    typer.Option(
        "--quiet",
        "-q",
        help="Only warnings and errors.",
        rich_help_panel=PANEL_OUT,
        metavar="",
    ),
]
LogFmt = Annotated[
    Literal["text", "json"],
    typer.Option(
        "--log-format",
        envvar=LOG_FORMAT_VAR,
        help="text, or json: every line on stderr one JSON object (errors too), for cron.",
        rich_help_panel=PANEL_OUT,
    ),
]
SummaryFile = Annotated[
    Path | None,
    typer.Option(
        "--summary",
        help="Also write the final summary (every count, the job, the report, the exit code) "
        "to this file as one JSON object, replaced atomically, for monitoring.",
        rich_help_panel=PANEL_OUT,
        metavar="PATH",
    ),
]
Rate = Annotated[
    float | None,
    typer.Option(
        "--rate",
        help="Requests allowed per --rate-window, compared as a rate with the portal's own "
        "window (default: the portal's limit; until its first answer 10 for leads-v1, 100 "
        "for crm-v3).",
        min=0.001,
        rich_help_panel=PANEL_PACE,
        show_default=False,
        metavar="N",
    ),
]
RateWindow = Annotated[
    float | None,
    typer.Option(
        "--rate-window",
        help="Seconds of the window --rate counts over (default: the portal's; until its "
        "first answer 1 for leads-v1, 10 for crm-v3).",
        show_default=False,
        min=0.001,
        rich_help_panel=PANEL_PACE,
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
        rich_help_panel=PANEL_PACE,
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
        rich_help_panel=PANEL_PACE,
        metavar="N",
    ),
]
MaxRetryTime = Annotated[
    float,
    typer.Option(
        "--max-retry-time",
        help="Seconds one lead may spend retrying.",
        min=0,
        rich_help_panel=PANEL_PACE,
        metavar="SECONDS",
    ),
]
DailyReserve = Annotated[
    int,
    typer.Option(
        "--daily-reserve",
        help="Stop (rows deferred) when the portal's daily requests remaining fall to this.",
        min=0,
        rich_help_panel=PANEL_PACE,
        metavar="N",
    ),
]


def make_reporter(
    fmt: LogFormat,
    quiet: bool,
    token: Token | None,
    verbose: bool = False,
    summary: Path | None = None,
) -> Reporter:
    setup_logging(fmt, quiet=quiet, token=token, verbose=verbose)
    return Reporter(fmt, quiet=quiet, summary_path=summary)


def given_flags(ctx: typer.Context) -> set[str]:
    """The parameters given on the command line or by an environment variable."""
    given = set()
    for name in ctx.params:
        source = ctx.get_parameter_source(name)
        if source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP"):
            given.add(name)
    return given


def sample_count(text: str) -> int | None:
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


def backup_on(no_backup: bool, only_empty: list[str] | None) -> bool:
    if no_backup and only_empty:
        raise UsageError(
            "--only-empty needs the current values, which --no-backup does not read; drop one"
        )
    return not no_backup


def send_options(
    concurrency: int, max_attempts: int, max_retry_time: float, daily_reserve: int
) -> SendOptions:
    return SendOptions(
        concurrency=concurrency,
        max_attempts=max_attempts,
        max_retry_seconds=max_retry_time,
        daily_reserve=daily_reserve,
    )


def pair(
    text: str, flag: str = "--map", form: str = '"COLUMN=field", e.g. "Lead ID=guid"'
) -> tuple[str, str]:
    source, sep, target = text.partition("=")
    if not sep or not source.strip() or not target.strip():
        raise UsageError(f"{flag} takes {form}; got {text!r}")
    return source, target


def object_files(values: list[str] | None, flag: str) -> dict[str, Path]:
    pairs = (pair(text, flag, "OBJECT=FILE") for text in values or ())
    return {name.strip(): Path(path) for name, path in pairs}


def delimiter_char(value: str | None) -> str | None:
    if value is None:
        return None
    value = {"\\t": "\t", "tab": "\t"}.get(value, value)
    if len(value) != 1:
        raise UsageError(f"--delimiter takes one character (or 'tab'), not {value!r}")
    return value


Alongside = Annotated[
    bool,
    typer.Option(
        "--alongside-running-jobs",
        help="Send even while another job writes the same object on this portal (by default "
        "a job waits for none: it exits 2 naming the running one). Only for files that share "
        "no record: two jobs writing one record back up each other's values.",
        rich_help_panel=PANEL_JOB,
        metavar="",
    ),
]
WaitDaily = Annotated[
    bool,
    typer.Option(
        "--wait-for-daily-reset",
        help="When the portal's daily limit stops the job, sleep until it starts again "
        "(the time HubSpot's usage read gives, at most a day away) and go on; Ctrl-C stops "
        "waiting. For cron jobs that must finish.",
        rich_help_panel=PANEL_JOB,
        metavar="",
    ),
]
Notify = Annotated[
    str | None,
    typer.Option(
        "--notify",
        help="When the run ends, on every exit code, POST its summary (JSON, with a "
        "Slack-compatible text line) to this URL; a failed post is a warning, never the exit "
        "code. Never carries the token.",
        rich_help_panel=PANEL_OUT,
        metavar="URL",
        show_default=False,
    ),
]
Profile = Annotated[
    str | None,
    typer.Option(
        "--profile",
        help="Settings of a portal from the \\[profile.NAME] table of config.toml in the "
        "user's config directory ($BULKLEADS_CONFIG): base_url, api, api_version, object, auth, "
        "rate, "
        "rate_window, concurrency, token_file, token_env, map, custom_fields, date_formats, "
        "report_dialect. Flags win over it.",
        rich_help_panel=PANEL_TARGET,
        metavar="NAME",
    ),
]


@dataclass(frozen=True)
class SendFlags:
    """The flags of every command that sends: token, pace, retries, timeout, profile."""

    token_file: TokenFile = None
    rate: Rate = None
    rate_window: RateWindow = None
    concurrency: Concurrency = 4
    max_attempts: MaxAttempts = 6
    max_retry_time: MaxRetryTime = 300.0
    daily_reserve: DailyReserve = 0
    timeout: Timeout = 30.0
    profile: Profile = None
    alongside: Alongside = False
    wait_for_daily_reset: WaitDaily = False
    notify: Notify = None

    def with_profile(self, ctx: typer.Context) -> tuple[SendFlags, str]:
        """These flags over ``--profile``'s settings (a flag given wins), and the environment
        variable that holds the token."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        var = apply_profile(ctx, self.profile, values)
        return SendFlags(**values), var

    def pace(self) -> Pace:
        return Pace(self.rate, self.rate_window, self.timeout, self.options())

    def token_source(self, var: str) -> dict[str, str | None]:
        """Where this run's token and settings came from, to keep with its job: the profile,
        and the token file or the variable (never the token)."""
        path = str(self.token_file.resolve()) if self.token_file is not None else None
        return {
            "profile": self.profile,
            "token_file": path,
            "token_env": None if path else var,
        }

    def of_job(self, ctx: typer.Context, job: str, state_dir: Path | None) -> SendFlags:
        """These flags, with the job's own profile and token source where none was given:
        ``retry`` and ``undo`` of a job run with ``--profile`` or ``--token-file`` need no
        flag again (a flag given still wins)."""
        given = given_flags(ctx)
        if given & {"profile", "token_file"}:
            return self
        try:
            folder = JobFolder(state_dir)
            with JobStore(folder.find(job)) as store:
                meta = JobMeta.read(store)
        except JobError:
            return self  # the command says what is wrong with the job
        token_file = Path(meta.token_file) if meta.token_file else None
        return dataclasses.replace(self, profile=meta.profile, token_file=token_file)

    def options(self) -> SendOptions:
        return send_options(
            self.concurrency, self.max_attempts, self.max_retry_time, self.daily_reserve
        )


@dataclass(frozen=True)
class OutputFlags:
    """Where jobs live and what the command says: every command that runs a job."""

    state_dir: StateDir = None
    quiet: Quiet = False
    verbose: Verbose = False
    log_format: LogFmt = "text"
    summary: SummaryFile = None

    def reporter(self, token: Token | None, notify: str | None = None) -> Reporter:
        if self.summary is not None:
            check_summary_path(self.summary)
        out = make_reporter(self.log_format, self.quiet, token, self.verbose, self.summary)
        out.notify_url, out.token = notify, token
        return out


C = TypeVar("C", bound=Callable[..., None])


def flag_groups(command: C) -> C:
    """Typer has no parameter groups: a parameter of ``command`` typed as a flag dataclass
    (:class:`SendFlags`, :class:`OutputFlags`) is shown to typer as that dataclass's flags,
    declared once, and reaches ``command`` as one value."""
    hints = get_type_hints(command, include_extras=True)
    params: list[inspect.Parameter] = []
    groups: dict[str, type[Any]] = {}
    for param in inspect.signature(command).parameters.values():
        kind = hints[param.name]
        if isinstance(kind, type) and dataclasses.is_dataclass(kind):
            groups[param.name] = kind
            field_hints = get_type_hints(kind, include_extras=True)
            params += [
                inspect.Parameter(
                    f.name,
                    inspect.Parameter.KEYWORD_ONLY,
                    default=f.default,
                    annotation=field_hints[f.name],
                )
                for f in dataclasses.fields(kind)
            ]
        else:
            params.append(param.replace(annotation=kind))

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        for name, kind in groups.items():
            kwargs[name] = kind(**{f.name: kwargs.pop(f.name) for f in dataclasses.fields(kind)})
        command(*args, **kwargs)

    signature = inspect.signature(command).replace(parameters=params)
    wrapper.__signature__ = signature  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params} | {"return": None}
    return cast(C, wrapper)


# config.toml keys that stand for a flag, and that flag's parameter name
_PROFILE_FLAGS: Final = {
    "base_url": "base_url",
    "api": "api",
    "object": "crm_object",
    "auth": "auth",
    "api_version": "api_version",
    "report_dialect": "report_dialect",
    "rate": "rate",
    "rate_window": "rate_window",
    "concurrency": "concurrency",
    "token_file": "token_file",
    "notify": "notify",
}


G = TypeVar("G")


def profiled(ctx: typer.Context, name: str | None, group: G) -> G:
    """A flag group with profile ``name``'s settings where no flag was given (a flag wins)."""
    assert dataclasses.is_dataclass(group) and not isinstance(group, type)
    values = {f.name: getattr(group, f.name) for f in dataclasses.fields(group)}
    apply_profile(ctx, name, values)
    return cast(G, dataclasses.replace(group, **values))


def apply_profile(ctx: typer.Context, name: str | None, values: dict[str, Any]) -> str:
    """Fill ``values`` (flag name -> value) from profile ``name`` where no flag was given
    (a flag wins); returns the environment variable that holds the token."""
    if name is None:
        return ENV_VAR
    settings, given = load_profile(name), given_flags(ctx)
    for key, flag in _PROFILE_FLAGS.items():
        value = getattr(settings, key)
        if value and flag in values and flag not in given:
            values[flag] = Path(value).expanduser() if flag == "token_file" else value
    lists = {
        "renames": [f"{column}={field}" for column, field in (settings.map or {}).items()],
        "custom_field": list(settings.custom_fields or ()),
        "date_format": list(settings.date_formats or ()),
    }
    for flag, value in lists.items():
        if value and flag in values and flag not in given:
            values[flag] = value
    if settings.token_env and values.get("token_file") is None:
        return settings.token_env
    return ENV_VAR
