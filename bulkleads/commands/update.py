"""``bulkleads update``: plan a file into a job and send it.

Its flags come in groups, each a frozen dataclass declared once and shown to typer by
:func:`~bulkleads.cli.options.flag_groups`; each group turns itself into the settings it
stands for, so the command's body only joins them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Final, Literal

import typer

from bulkleads.cli.errors import handles_errors
from bulkleads.cli.options import (
    PANEL_FIELDS,
    PANEL_INPUT,
    PANEL_JOB,
    PANEL_TARGET,
    OutputFlags,
    SendFlags,
    backup_on,
    delimiter_char,
    flag_groups,
    given_flags,
    pair,
    profiled,
    sample_count,
)
from bulkleads.errors import UsageError
from bulkleads.hubspot import ApiOptions, refuse_foreign_flags
from bulkleads.hubspot import choose as choose_api
from bulkleads.pipeline.lifecycle import resume_command, update
from bulkleads.pipeline.settings import (
    DEFAULT_BASE_URL,
    Connection,
    InputSpec,
    JobOptions,
    Run,
    dated,
)
from bulkleads.plan.options import PlanOptions
from bulkleads.report.rows import ReportDialect
from bulkleads.send.options import DEFAULT_SAMPLE, ReadOptions
from bulkleads.token import Token, load_token, optional_token


@dataclass(frozen=True)
class InputFlags:
    """How the file is read."""

    fmt: Annotated[
        Literal["csv", "tsv", "jsonl", "xlsx"] | None,
        typer.Option(
            "--format",
            help="csv, tsv, jsonl or xlsx (default: from the file name).",
            rich_help_panel=PANEL_INPUT,
        ),
    ] = None
    sheet: Annotated[
        str | None,
        typer.Option(
            "--sheet",
            help=".xlsx: the sheet to read (default: the first).",
            rich_help_panel=PANEL_INPUT,
            metavar="NAME",
        ),
    ] = None
    delimiter: Annotated[
        str | None,
        typer.Option(
            "--delimiter",
            help="CSV delimiter (default: sniffed among , ; tab |).",
            rich_help_panel=PANEL_INPUT,
            metavar="CHAR",
        ),
    ] = None
    encoding: Annotated[
        str,
        typer.Option(
            "--encoding",
            help="Text encoding: auto (UTF-8 with or without BOM, else cp1252, the "
            "encoding of Excel's plain CSV export), or a name such as utf-8 or cp1252.",
            rich_help_panel=PANEL_INPUT,
            metavar="NAME",
        ),
    ] = "auto"

    def spec(self, path: str, plan: PlanOptions) -> InputSpec:
        return InputSpec(
            path,
            fmt=self.fmt,
            sheet=self.sheet,
            encoding=self.encoding,
            delimiter=delimiter_char(self.delimiter),
            plan=plan,
        )


@dataclass(frozen=True)
class FieldFlags:
    """What the columns mean: the key, renames, values, which fields may be sent."""

    guid_column: Annotated[
        str | None,
        typer.Option(
            "--guid-column",
            help="Key column (default: the one named guid; id for crm-v3).",
            rich_help_panel=PANEL_FIELDS,
            metavar="TEXT",
        ),
    ] = None
    renames: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help='Rename a column: "Lead ID=guid", "Close date=closedAt". Repeatable.',
            rich_help_panel=PANEL_FIELDS,
            metavar="COLUMN=FIELD",
        ),
    ] = None
    ignore: Annotated[
        list[str] | None,
        typer.Option(
            "--ignore-column",
            help="Drop a column. Repeatable.",
            rich_help_panel=PANEL_FIELDS,
            metavar="NAME",
        ),
    ] = None
    date_format: Annotated[
        list[str] | None,
        typer.Option(
            "--date-format",
            help="strptime format of local dates in date fields, e.g. %d/%m/%Y. Repeatable; a "
            "date two formats read differently is an invalid row.",
            rich_help_panel=PANEL_FIELDS,
            metavar="FORMAT",
        ),
    ] = None
    clear_token: Annotated[
        str | None,
        typer.Option(
            "--clear-token",
            help="A CSV cell equal to this clears the field (e.g. NULL).",
            rich_help_panel=PANEL_FIELDS,
            metavar="TEXT",
        ),
    ] = None
    timezone: Annotated[
        str,
        typer.Option(
            "--timezone",
            help="Zone for dates and naive times.",
            rich_help_panel=PANEL_FIELDS,
            metavar="ZONE",
        ),
    ] = "UTC"
    on_conflict: Annotated[
        Literal["last", "first", "error"],
        typer.Option(
            "--on-conflict",
            help="Two rows set one field of a lead differently: last, first or error.",
            rich_help_panel=PANEL_FIELDS,
        ),
    ] = "last"
    allow_field: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-field",
            help="Send a field normally not editable. Repeatable.",
            rich_help_panel=PANEL_FIELDS,
            metavar="NAME",
        ),
    ] = None
    custom_field: Annotated[
        list[str] | None,
        typer.Option(
            "--custom-field",
            help="Send this field although it is not a standard field (a custom field of "
            "your portal). Repeatable.",
            rich_help_panel=PANEL_FIELDS,
            metavar="NAME",
        ),
    ] = None
    allow_custom_fields: Annotated[
        bool,
        typer.Option(
            "--allow-custom-fields",
            help="Send every field that is not a standard one (typos of standard fields "
            "still stop the run).",
            rich_help_panel=PANEL_FIELDS,
            metavar="",
        ),
    ] = False

    def plan(self, target: TargetFlags) -> PlanOptions:
        return PlanOptions(
            guid_column=self.guid_column,
            renames=tuple(pair(m) for m in self.renames or ()),
            ignore=tuple(self.ignore or ()),
            clear_token=self.clear_token,
            timezone=self.timezone,
            on_conflict=self.on_conflict,
            allow_fields=tuple(self.allow_field or ()),
            custom_fields=tuple(self.custom_field or ()),
            date_formats=tuple(self.date_format or ()),
            allow_custom_fields=self.allow_custom_fields,
            associate_by=_by_object(
                target.associate_by, "--associate-by", "OBJECT=PROPERTY, e.g. companies=domain"
            ),
            association_labels=_by_object(
                target.association_label,
                "--association-label",
                'OBJECT=LABEL, e.g. companies="Billing"',
            ),
        )


@dataclass(frozen=True)
class TargetFlags:
    """Where updates go: the API, its object, how records are matched, created, linked."""

    base_url: Annotated[
        str,
        typer.Option(
            "--base-url",
            envvar="BULKLEADS_BASE_URL",
            help="API root; http:// only to loopback.",
            rich_help_panel=PANEL_TARGET,
            metavar="URL",
        ),
    ] = DEFAULT_BASE_URL
    api: Annotated[
        Literal["leads-v1", "crm-v3"] | None,
        typer.Option(
            "--api",
            help="leads-v1 (PUT one lead a request) or crm-v3 (batch update of --object, up to "
            "100 records a request). Default: from the flags and the file: --object, --match, "
            "--create or an id column mean crm-v3; a guid column means leads-v1.",
            rich_help_panel=PANEL_TARGET,
            show_default=False,
        ),
    ] = None
    api_version: Annotated[
        Literal["2026-09", "v3"],
        typer.Option(
            "--api-version",
            help="crm-v3: HubSpot's API version: 2026-09 (/crm/objects/2026-09/..., the "
            "default) or v3 (the legacy /crm/v3/... paths, unsupported from September 2027).",
            rich_help_panel=PANEL_TARGET,
        ),
    ] = "2026-09"
    crm_object: Annotated[
        str,
        typer.Option(
            "--object",
            help="crm-v3: a standard object (contacts, companies, deals, tickets, products, "
            "line_items, leads, ...) or a custom one by name or object type id (2-1234567), "
            "looked up in the portal's schemas.",
            rich_help_panel=PANEL_TARGET,
            metavar="OBJECT",
        ),
    ] = "contacts"
    batch_size: Annotated[
        int,
        typer.Option(
            "--batch-size",
            help="crm-v3: records per request.",
            min=1,
            max=100,
            rich_help_panel=PANEL_TARGET,
            metavar="N",
        ),
    ] = 100
    id_property: Annotated[
        str | None,
        typer.Option(
            "--match",
            "--id-property",
            help="crm-v3: match records by this unique property (e.g. email): the column of "
            "that name is the key; records are read by it (their ids and backup in one "
            "request) and written by id. A key no record has is not_found.",
            rich_help_panel=PANEL_TARGET,
            metavar="PROPERTY",
        ),
    ] = None
    create: Annotated[
        bool,
        typer.Option(
            "--create",
            help="crm-v3 with --match: create the records no record has the key of (by "
            "upsert on the match property, never twice); the report says created, with the "
            "new id; undo archives them.",
            rich_help_panel=PANEL_TARGET,
            metavar="",
        ),
    ] = False
    associate_by: Annotated[
        list[str] | None,
        typer.Option(
            "--associate-by",
            help="crm-v3: an associate:OBJECT column names the records to link by this "
            "property instead of their ids: a unique one, or a company's domain (found by "
            "search). Repeatable.",
            rich_help_panel=PANEL_TARGET,
            metavar="OBJECT=PROPERTY",
        ),
    ] = None
    association_label: Annotated[
        list[str] | None,
        typer.Option(
            "--association-label",
            help="crm-v3: make an associate:OBJECT column's links with this labeled "
            "association type (resolved to its id once a run) instead of HubSpot's default. "
            "Repeatable.",
            rich_help_panel=PANEL_TARGET,
            metavar="OBJECT=LABEL",
        ),
    ] = None
    date_field: Annotated[
        list[str] | None,
        typer.Option(
            "--date-field",
            help="crm-v3: a property that takes dates, sent as epoch "
            "milliseconds (default: closedate). Repeatable.",
            rich_help_panel=PANEL_FIELDS,
            metavar="NAME",
        ),
    ] = None
    auth: Annotated[
        Literal["query", "bearer"] | None,
        typer.Option(
            "--auth",
            help="leads-v1: query (?access_token=, the default) or bearer (Authorization "
            "header). crm-v3 always uses bearer.",
            rich_help_panel=PANEL_TARGET,
            show_default=False,
        ),
    ] = None

    def with_api(
        self, given: set[str], fields: FieldFlags, file: InputFlags, path: str
    ) -> TargetFlags:
        """These flags with the API named, or else told by the flags and the file's header:
        the first command a user types (a contacts export, no flag) should work or say what
        would."""
        if self.api is not None:
            return self
        if given & _CRM_ONLY:
            return dataclasses.replace(self, api="crm-v3")
        leads = dataclasses.replace(self, api="leads-v1")  # as before there was a choice
        if fields.guid_column is not None or not Path(path).is_file():
            return leads  # stdin or a pipe is read once, by the plan: nothing to peek at
        renamed = {field.strip().lower() for _, field in (pair(m) for m in fields.renames or ())}
        with file.spec(path, PlanOptions()).open() as source:
            header = {name.strip().lower() for name in source.header} | renamed
        if header & {"id", "hs_object_id"} and "guid" not in header:
            return dataclasses.replace(self, api="crm-v3")
        if header & {"email", "domain"} and "guid" not in header:
            raise UsageError(_which_api(header, path))
        return leads  # a guid column, JSON lines, or a file the plan will say lacks one

    def connection(self, token: Token | None) -> Connection:
        assert self.api is not None  # named, or told by with_api
        options = ApiOptions(
            auth=self.auth,
            object=self.crm_object,
            batch_size=self.batch_size,
            id_property=self.id_property,
            date_fields=tuple(self.date_field) if self.date_field else ("closedate",),
            version=self.api_version,
            create=self.create,
        )
        return Connection(choose_api(self.api, options), self.base_url, token)


@dataclass(frozen=True)
class ReadFlags:
    """What is read around the writes: the backup, --only-empty, --verify, the sample."""

    no_backup: Annotated[
        bool,
        typer.Option(
            "--no-backup",
            help="Do not read leads before writing them: no backup (so no undo), no skipping "
            "of values already so, no --only-empty; saves one read per lead (CRM: per 100).",
            rich_help_panel=PANEL_JOB,
            metavar="",
        ),
    ] = False
    only_empty: Annotated[
        list[str] | None,
        typer.Option(
            "--only-empty",
            help="Write this field only where the lead has no value for it today (all: every "
            "field). Repeatable.",
            rich_help_panel=PANEL_FIELDS,
            metavar="FIELD",
        ),
    ] = None
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Read every updated lead back; one whose values did not stick is failed.",
            rich_help_panel=PANEL_JOB,
            metavar="",
        ),
    ] = False
    sample: Annotated[
        str,
        typer.Option(
            "--sample",
            help="--dry-run with a token: read this many records, spread evenly through the "
            "file, and project what would change from them; 'all' reads every record.",
            rich_help_panel=PANEL_JOB,
            metavar="N|all",
        ),
    ] = str(DEFAULT_SAMPLE)

    def options(self) -> ReadOptions:
        return ReadOptions(
            backup=backup_on(self.no_backup, self.only_empty),
            only_empty=tuple(self.only_empty or ()),
            verify=self.verify,
            sample=sample_count(self.sample),
        )


@dataclass(frozen=True)
class ReportFlags:
    """The job and its report: where it is written, a dry run, starting over."""

    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="Report path (default: <input>"
            ".report.csv beside the input; .jsonl writes JSON "
            "lines).",
            rich_help_panel=PANEL_JOB,
            metavar="PATH",
        ),
    ] = None
    report_dialect: Annotated[
        ReportDialect | None,
        typer.Option(
            "--report-dialect",
            help="How the report is written (default: like the input: its delimiter, and a "
            "BOM when it had one or was not UTF-8): excel (comma, BOM), csv, tsv or jsonl.",
            rich_help_panel=PANEL_JOB,
            show_default=False,
        ),
    ] = None
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Read, validate and plan; send nothing; needs no token.",
            rich_help_panel=PANEL_JOB,
            metavar="",
        ),
    ] = False
    fresh: Annotated[
        bool,
        typer.Option(
            "--fresh",
            help="Start this job over instead of resuming it.",
            rich_help_panel=PANEL_JOB,
            metavar="",
        ),
    ] = False

    def options(self, output: OutputFlags, send: SendFlags, var: str) -> JobOptions:
        return JobOptions(
            report=dated(self.report) if self.report is not None else None,
            report_dialect=self.report_dialect,
            dry_run=self.dry_run,
            fresh=self.fresh,
            state_dir=output.state_dir,
            command=resume_command(),
            alongside=send.alongside,
            wait_for_daily_reset=send.wait_for_daily_reset,
            **send.token_source(var),
        )


@handles_errors
@flag_groups
def update_command(
    ctx: typer.Context,
    input: Annotated[
        str,
        typer.Argument(
            help="CSV, TSV or JSONL file (optionally .gz), an .xlsx workbook, or - for stdin.",
            show_default=False,
            metavar="INPUT",
        ),
    ],
    *,
    file: InputFlags,
    fields: FieldFlags,
    target: TargetFlags,
    reading: ReadFlags,
    report: ReportFlags,
    send: SendFlags,
    output: OutputFlags,
) -> None:
    """Update the records listed in INPUT; running the same command again resumes the job.

    Examples: bulkleads update closes.csv --dry-run (validate, plan, show what would change);
    bulkleads update closes.csv (back up, send, report); bulkleads update contacts.xlsx --api
    crm-v3 --object contacts --sheet Export
    """
    send, var = send.with_profile(ctx)
    target = profiled(ctx, send.profile, target)  # a flag given wins over the profile
    fields = profiled(ctx, send.profile, fields)
    report = profiled(ctx, send.profile, report)
    given = given_flags(ctx)
    target = target.with_api(given, fields, file, input)
    assert target.api is not None
    refuse_foreign_flags(target.api, given)
    path = send.token_file
    token = optional_token(path, var=var) if report.dry_run else load_token(path, var=var)
    job = report.options(output, send, var)
    run = Run(target.connection(token), send.pace(), reading.options(), job)
    spec = file.spec(input, fields.plan(target))
    raise typer.Exit(update(run, spec, output.reporter(token, send.notify)))


# Flags only the CRM API takes: given without --api, they choose it.
_CRM_ONLY: Final = frozenset(
    {
        "crm_object",
        "id_property",
        "create",
        "associate_by",
        "association_label",
        "batch_size",
        "api_version",
        "date_field",
    }
)


def _which_api(header: set[str], path: str) -> str:
    """Exit 2's words when neither the flags nor the file name the API: the command that
    would work for the columns the file has."""
    seen = ", ".join(sorted(header)) or "none"
    if "email" in header:
        return (
            f"{path} has no guid or id column but an email column (columns: {seen}): to update "
            f"contacts by email, run: bulkleads update {path} --api crm-v3 --object contacts "
            "--match email (add --create to make the contacts no record has yet)"
        )
    return (
        f"{path} has no guid or id column but a domain column (columns: {seen}): HubSpot's "
        "company domain is not unique, so companies are updated by their record ids (an id "
        f"column: bulkleads update {path} --api crm-v3 --object companies) or a unique "
        "property (--match PROPERTY); a domain finds companies to link to "
        "(--associate-by companies=domain)"
    )


def _by_object(values: list[str] | None, flag: str, form: str) -> tuple[tuple[str, str], ...]:
    """``OBJECT=VALUE`` flags, one per object (the last given wins), sorted."""
    pairs = (pair(text, flag, form) for text in values or ())
    return tuple(sorted({obj.strip(): value.strip() for obj, value in pairs}.items()))
