"""What ``update``, ``retry`` and ``undo`` were asked to do, as one value the run reads."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from .console import Reporter
from .errors import UsageError
from .fields import FieldRules
from .hubspot import Api, Portal
from .hubspot import from_meta as api_from_meta
from .hubspot.http import Target, check_base_url
from .hubspot.leads_v1 import LeadsV1
from .plan import PlanOptions
from .portal_memory import PortalMemory
from .ratelimit import Limit, in_force
from .report import (
    ReportDialect,
)
from .sender import SendOptions
from .sources import Format, InputFile
from .token import Token
from .xlsx import XlsxFile

DEFAULT_BASE_URL: Final = "https://api.hubapi.com"
DEFAULT_SAMPLE: Final = 200  # records a dry run with a token reads, unless --sample says


@dataclass
class RunConfig:
    """Everything ``bulkleads update`` was asked to do."""

    input: str
    token: Token | None
    base_url: str = DEFAULT_BASE_URL
    fmt: Format | None = None
    sheet: str | None = None  # .xlsx: the sheet to read (default: the first)
    encoding: str = "auto"
    delimiter: str | None = None
    plan: PlanOptions = field(default_factory=PlanOptions)
    api: Api = field(default_factory=LeadsV1)
    rate: float | None = None  # None: the API's documented default (see pace())
    rate_window: float | None = None
    timeout: float = 30.0
    send: SendOptions = field(default_factory=SendOptions)
    report: Path | None = None
    report_dialect: ReportDialect | None = None  # None: like the input
    dry_run: bool = False
    fresh: bool = False
    backup: bool = True  # read each lead's current values before writing it
    only_empty: tuple[str, ...] = ()
    verify: bool = False
    sample: int | None = DEFAULT_SAMPLE  # a dry run's reads; None: every record
    force: bool = False  # undo: write back even where another client changed a value since
    portal: Portal | None = None  # crm-v3: the portal's property definitions, when read
    made: list[float] = field(default_factory=list)  # monotonic starts of requests outside pacing
    state_dir: Path | None = None  # None: the user's state directory (see jobs.py)
    command: str = ""

    def identity(self) -> dict[str, object]:
        """What changes the requests sent; equal identities over equal input are one job."""
        return {
            **self.api.identity(),
            "base_url": self.base_url,
            "format": self.fmt,
            "sheet": self.sheet,
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            # Reading decides what is sent: a lead already up to date is skipped.
            "backup": self.backup,
            "only_empty": sorted(self.only_empty),
            **self.plan.identity(),
        }

    def open_input(self) -> InputFile | XlsxFile:
        """The input: a workbook (``.xlsx``, or ``--format xlsx``), else a text file."""
        if self.fmt == "xlsx" or (
            self.fmt is None and self.input.lower().endswith((".xlsx", ".xlsm"))
        ):
            if self.input == "-":
                raise UsageError("a workbook cannot be read from stdin; pass its path")
            return XlsxFile(self.input, sheet=self.sheet)
        return InputFile(self.input, fmt=self.fmt, encoding=self.encoding, delimiter=self.delimiter)

    def pace(self) -> tuple[float, float]:
        """``(requests, per seconds)`` asked for, else the API's documented default."""
        default = self.api.default_pace
        return (self.rate or default.requests, self.rate_window or default.window)

    def pace_choice(self, memory: PortalMemory) -> tuple[Limit, str]:
        """The limit a run starts at, and why: the pace asked for, else the portal's own as
        it last stated it, else the API's documented default until its first answer."""
        asked = Limit(*self.pace())
        explicit = self.rate is not None
        limit = in_force(asked, memory.limit, explicit=explicit)
        if explicit and memory.limit is not None and memory.limit.rate < asked.rate:
            window = memory.limit.window
            return limit, (
                f"{Limit(asked.rate * window, window)} asked (--rate), held to the "
                f"portal's {memory.limit} as it last stated it"
            )
        if explicit:
            return asked, f"{asked} (--rate / --rate-window, or the profile)"
        if memory.limit is not None:
            ago = _duration_words(time.time() - (memory.seen_at or time.time()))
            return limit, f"{limit}, the portal's limit as it stated it {ago} ago"
        return asked, (
            f"{asked}, the API's documented default until the portal's first answer states "
            "its limit (--rate sets one)"
        )

    def rules(self) -> FieldRules:
        return self.api.rules(self.portal)

    def target(self) -> Target:
        assert self.token is not None
        return self.api.target(self.base_url, self.token)

    def read_portal(self, out: Reporter) -> None:
        """With a token: what the API must read from the portal first, once per run."""
        if self.token is None or self.portal is not None:
            return
        self.portal = self.api.read_portal(self.base_url, self.token)
        if self.api.reads_portal:
            self.made.append(time.monotonic())  # the loop's clock: the pacer counts it as ours
        if self.portal is not None:
            out.info(
                f"checked against the portal's {len(self.portal.properties)} "
                f"{self.portal.crm_object} properties",
                event="properties",
                count=len(self.portal.properties),
            )

    def bundles_per_request(self) -> int:
        return self.api.per_request

    def to_meta(self) -> dict[str, object]:
        """What ``retry`` needs to send to the same place the same way (never the token)."""
        return {
            "base_url": self.base_url,
            **self.api.to_meta(),
            "command": self.command,
            "backup": self.backup,
            "only_empty": list(self.only_empty),
        }

    def pace_meta(self) -> dict[str, object]:
        """The pace asked for (None: the API's default), kept so that ``retry`` keeps it;
        written by every run that sends, so it is always the latest run's."""
        return {"rate": self.rate, "rate_window": self.rate_window}

    def from_meta(self, meta: dict[str, Any]) -> None:
        self.base_url = check_base_url(str(meta.get("base_url", self.base_url)))
        self.api = api_from_meta(meta)
        self.command = str(meta.get("command", ""))
        self.backup = bool(meta.get("backup", False))  # jobs before reading existed: off
        self.only_empty = tuple(meta.get("only_empty", ()))
        if self.rate is None and self.rate_window is None:
            # A pace set to spare the portal's other apps must hold for a retry too.
            self.rate, self.rate_window = meta.get("rate"), meta.get("rate_window")


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


def _duration_words(seconds: float) -> str:
    """``42 s``, ``3 min``, ``2 h``: how long ago, roughly."""
    if seconds < 90:
        return f"{max(0, round(seconds))} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{round(seconds / 3600)} h"
