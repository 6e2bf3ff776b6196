"""What a command was asked to do, as small frozen values, one per concern.

A command turns its flags into these; :mod:`bulkleads.pipeline.lifecycle` takes them through a job's
life. Each value owns its part of a job's identity (what makes two runs one job) and of the
job's metadata (what ``retry`` and ``undo`` rebuild it from), so that no other module has to
know which flag belongs where. The one thing learnt during a run, the portal's property
definitions, lives beside them in :class:`Run`.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Final

from bulkleads.errors import UsageError
from bulkleads.fields import FieldRules
from bulkleads.hubspot import Api, Portal
from bulkleads.hubspot import from_meta as api_from_meta
from bulkleads.hubspot.associations import AssociationType
from bulkleads.hubspot.http import Target, check_base_url
from bulkleads.hubspot.leads_v1 import LeadsV1
from bulkleads.input.text import Format, InputFile
from bulkleads.input.xlsx import XlsxFile
from bulkleads.jobstore.folder import JobFolder
from bulkleads.jobstore.lock import PortalLock
from bulkleads.jobstore.meta import JobMeta
from bulkleads.plan.options import PlanOptions
from bulkleads.report.rows import ReportDialect
from bulkleads.send.options import Pace, ReadOptions, Sending
from bulkleads.send.portal_memory import PortalMemory, portal_key
from bulkleads.token import Token

DEFAULT_BASE_URL: Final = "https://api.hubapi.com"


@dataclass(frozen=True)
class Connection:
    """Where requests go: the API, its root URL and the token (which no file ever holds)."""

    api: Api = field(default_factory=LeadsV1)
    base_url: str = DEFAULT_BASE_URL
    token: Token | None = None

    def __post_init__(self) -> None:
        # Checked once, where it is made: plain http only to loopback, no trailing slash.
        object.__setattr__(self, "base_url", check_base_url(self.base_url))

    def target(self) -> Target:
        if self.token is None:
            raise UsageError("no access token")  # the CLI loads it; this guards library callers
        return self.api.target(self.base_url, self.token)

    def memory(self, state_dir: Path | None) -> PortalMemory:
        """What the runs just before this one left of this portal's window."""
        return PortalMemory.load(JobFolder(state_dir).root, self.base_url, self.token)

    def identity(self) -> dict[str, object]:
        return {**self.api.identity(), "base_url": self.base_url}

    def to_meta(self) -> dict[str, object]:
        return {"base_url": self.base_url, **self.api.to_meta()}

    @classmethod
    def of_job(cls, meta: JobMeta, token: Token | None) -> Connection:
        """The connection a job was planned for (``retry``, ``undo``), with today's token."""
        return cls(api_from_meta(meta.api_options), meta.base_url or DEFAULT_BASE_URL, token)


@dataclass(frozen=True)
class JobOptions:
    """Where the job lives and what it writes."""

    report: Path | None = None
    report_dialect: ReportDialect | None = None  # None: like the input
    dry_run: bool = False
    fresh: bool = False
    state_dir: Path | None = None  # None: the user's state directory (see jobs.py)
    command: str = ""  # the command line that resumes the job
    alongside: bool = False  # write even while another job writes the same object there
    wait_for_daily_reset: bool = False  # a daily-limit stop sleeps until the reset, goes on
    # where the token and settings came from (kept with the job; never the token itself)
    profile: str | None = None
    token_env: str | None = None
    token_file: str | None = None

    def folder(self) -> JobFolder:
        return JobFolder(self.state_dir)


@dataclass(frozen=True)
class InputSpec:
    """The input file and how to read it into bundles."""

    path: str
    fmt: Format | None = None
    sheet: str | None = None  # .xlsx: the sheet to read (default: the first)
    encoding: str = "auto"
    delimiter: str | None = None
    plan: PlanOptions = field(default_factory=PlanOptions)

    def identity(self) -> dict[str, object]:
        return {
            "format": self.fmt,
            "sheet": self.sheet,
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            **self.plan.identity(),
        }

    def open(self) -> InputFile | XlsxFile:
        """A workbook (``.xlsx``, or ``--format xlsx``), else a text file."""
        if self.fmt == "xlsx" or (
            self.fmt is None and self.path.lower().endswith((".xlsx", ".xlsm"))
        ):
            if self.path == "-":
                raise UsageError("a workbook cannot be read from stdin; pass its path")
            return XlsxFile(self.path, sheet=self.sheet)
        return InputFile(self.path, fmt=self.fmt, encoding=self.encoding, delimiter=self.delimiter)


@dataclass(frozen=True)
class Run:
    """One command's settings, and what it learned from the portal before sending (see
    :mod:`bulkleads.pipeline.portal`, which returns a new Run): the property definitions the
    rules check against, the link types, and when it asked (the pacer counts those requests
    as its own). Frozen, and it does no I/O."""

    connection: Connection
    pace: Pace = field(default_factory=Pace)
    reading: ReadOptions = field(default_factory=ReadOptions)
    job: JobOptions = field(default_factory=JobOptions)
    portal: Portal | None = None
    made: tuple[float, ...] = ()  # monotonic starts of requests outside pacing
    link_types: tuple[tuple[str, AssociationType], ...] = ()  # by linked object

    @property
    def api(self) -> Api:
        return self.connection.api

    def rules(self) -> FieldRules:
        return self.api.rules(self.portal)

    def of_job(self, meta: JobMeta) -> Run:
        """This run's flags over the job it continues: its API, URL, reading, and its pace
        unless one was asked."""
        return replace(
            self,
            connection=Connection.of_job(meta, self.connection.token),
            pace=self.pace.of_job(meta),
            reading=self.reading.of_job(meta),
            portal=None,
            made=(),
        )

    def memory(self) -> PortalMemory:
        return self.connection.memory(self.job.state_dir)

    def sending(self) -> Sending:
        """What sending needs of this run, as one frozen value (the portal's memory read
        now: the window the runs just before left)."""
        return Sending(
            api=self.api,
            base_url=self.connection.base_url,
            token=self.connection.token,
            rules=self.rules(),
            pace=self.pace,
            reading=self.reading,
            memory=self.memory(),
            made=self.made,
            command=self.job.command,
        )

    def portal_lock(self, job: str) -> AbstractContextManager[object]:
        """The lock a job holds while it writes its object on its portal (not yet taken):
        another job writing the same object there would back up this one's values and an
        undo of either would undo the other's. None to hold with --alongside-running-jobs."""
        if self.job.alongside or self.connection.token is None:
            return nullcontext()
        identity = self.api.identity()
        what = str(identity["object"] or "leads")
        key = portal_key(self.connection.base_url, self.connection.token)
        name = f"{key}-{identity['api']}-{what}.lock"
        return PortalLock(self.job.folder().root / "portals" / name, job, what)

    def to_meta(self) -> dict[str, object]:
        """What ``retry`` needs to send to the same place the same way (never the token)."""
        return {
            **self.connection.to_meta(),
            "command": self.job.command,
            "profile": self.job.profile,
            "token_env": self.job.token_env,
            "token_file": self.job.token_file,
            **self.reading.to_meta(),
            "key_column": self.rules().key,  # the report's and diff's header for the key
        }


_STAMPS: Final = {"{date}": "%Y-%m-%d", "{time}": "%H%M%S", "{datetime}": "%Y-%m-%dT%H%M%S"}


def dated(path: Path, now: datetime | None = None) -> Path:
    """``path`` with ``{date}``, ``{time}`` or ``{datetime}`` replaced by the local time of
    this run: a nightly job's reports side by side (``closes-{date}.report.csv``), where one
    path would keep only the last night's."""
    moment = now or datetime.now()
    text = str(path)
    for mark, form in _STAMPS.items():
        text = text.replace(mark, moment.strftime(form))
    return Path(text)


def default_report(input_path: str, job: str, *, dry_run: bool = False) -> Path:
    """``<input>.report.csv`` beside the input; a dry run's is ``<input>.dry-run.report.csv``,
    so that rehearsing a job that has sent never replaces its real report. Only ``.csv`` is
    dropped from the name: ``closes.csv`` and ``closes.xlsx`` (or ``closes.jsonl``) write
    ``closes.report.csv`` and ``closes.xlsx.report.csv``, and never replace each other's."""
    ending = ".dry-run.report.csv" if dry_run else ".report.csv"
    if input_path == "-":
        return Path(f"bulkleads-{job}{ending}")
    path = Path(input_path)
    name = path.name[:-4] if path.name.lower().endswith(".csv") else path.name
    return path.with_name(f"{name}{ending}")
