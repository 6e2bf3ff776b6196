"""One command's life: plan into the job store, send what is not yet confirmed, write the report.

The CLI parses flags into a :class:`RunConfig` and calls :func:`update` or :func:`retry`; all
wiring between sources, plan, store, pacing, target, sender and report happens here, so the CLI
stays thin and these functions can be driven from tests directly.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from .console import Reporter, plural
from .errors import EXIT_ABORTED, EXIT_OK, EXIT_ROWS_FAILED, EXIT_STOPPED, UsageError
from .fields import FieldRules
from .hubspot import Api, Portal
from .hubspot import from_meta as api_from_meta
from .hubspot.http import Target, check_base_url
from .hubspot.leads_v1 import LeadsV1
from .jobs import JobFolder, job_id, job_of, remove_store
from .pace_page import check_page_path, write_html
from .pacing import Limit, Pacer
from .phases import Phase, ReadPhase, VerifyPhase, WritePhase
from .plan import PlanOptions, PlanSummary, plan
from .portal_memory import PortalMemory
from .report import (
    DIFF_COLUMNS,
    ReportDialect,
    RowOutcome,
    check_report_path,
    dialect_for,
    diff_path,
    write_diff,
    write_report,
)
from .sender import Sender, SendOptions, SendStats
from .sources import Format, InputFile
from .store import RESUMABLE, JobStore, State
from .timeline import Timeline
from .token import Token
from .xlsx import XlsxFile

DEFAULT_BASE_URL: Final = "https://api.hubapi.com"
DEFAULT_SAMPLE: Final = 200  # records a dry run with a token reads, unless --sample says
_SHOW_READING_FROM: Final = 8 * 1024 * 1024  # bytes; smaller files are read in a blink


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
        if self.rate is not None:
            if memory.limit is not None and memory.limit.rate < asked.rate:
                window = memory.limit.window
                return Limit(memory.limit.requests, window), (
                    f"{Limit(asked.rate * window, window)} asked (--rate), held to the "
                    f"portal's {memory.limit} as it last stated it"
                )
            return asked, f"{asked} (--rate / --rate-window, or the profile)"
        if memory.limit is not None:
            ago = _duration_words(time.time() - (memory.seen_at or time.time()))
            return memory.limit, f"{memory.limit}, the portal's limit as it stated it {ago} ago"
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
    so that rehearsing a job that has sent never replaces its real report."""
    ending = ".dry-run.report.csv" if dry_run else ".report.csv"
    if input_path == "-":
        return Path(f"bulkleads-{job}{ending}")
    path = Path(input_path)
    name = path.name
    for suffix in (".gz", ".csv", ".tsv", ".txt", ".jsonl", ".ndjson", ".xlsx", ".xlsm"):
        name = name.removesuffix(suffix) if name.lower().endswith(suffix) else name
    return path.with_name(f"{name}{ending}")


def update(config: RunConfig, out: Reporter) -> int:
    """``bulkleads update``: returns the exit code."""
    config.base_url = check_base_url(config.base_url)
    if not config.dry_run and config.token is None:
        raise UsageError("no access token")  # the CLI loads it; this guards library callers
    tz = _zone(config.plan.timezone)
    inputs = [] if config.input == "-" else [Path(config.input)]
    if config.report is not None or inputs:  # known before reading: refused before reading
        check_report_path(
            config.report or default_report(config.input, "", dry_run=config.dry_run), inputs
        )
    folder = JobFolder(config.state_dir)
    config.read_portal(out)
    scratch = folder.scratch()
    planned = None
    try:
        planned = _plan_job(config, folder, scratch, inputs, tz, out)
        if isinstance(planned, int):
            return planned  # a dry run: planned and reported, nothing kept
    finally:
        if not isinstance(planned, tuple):
            remove_store(scratch)
    return run_planned(folder, scratch, planned, config, out)


def run_planned(
    folder: JobFolder,
    scratch: Path,
    planned: tuple[str, Path, PlanSummary],
    config: RunConfig,
    out: Reporter,
) -> int:
    """Take a job planned into ``scratch`` (a new one, or the one it resumes) and send it."""
    job, report, summary = planned
    with folder.lock(job):  # one process per job, from here until its report is written
        try:
            path = open_job(
                folder, scratch, job, fresh=config.fresh, out=out, noun=config.rules().noun
            )
        finally:
            remove_store(scratch)
        print_plan(out, config, summary, [], path)
        return send_and_report(path, config, report, RESUMABLE, out)


def _plan_job(
    config: RunConfig,
    folder: JobFolder,
    scratch: Path,
    inputs: list[Path],
    tz: ZoneInfo,
    out: Reporter,
) -> tuple[str, Path, PlanSummary] | int:
    """Plan the input into ``scratch``: the job's id, report and plan, or, for a dry run, its
    exit code once the plan is printed and reported."""
    with config.open_input() as source, JobStore(scratch) as store:
        big = source.total_bytes is None or source.total_bytes > _SHOW_READING_FROM
        reading = out.progress(source.total_bytes, "reading", unit="bytes") if big else None
        try:
            summary = plan(
                source,
                store,
                config.plan,
                tz,
                rules=config.rules(),
                on_progress=reading.set if reading else None,
            )
        finally:
            if reading:
                reading.close()
        job = job_id(source.content_hash, config.identity())
        dialect = dialect_for(
            config.report_dialect,
            source.format,
            source.delimiter,
            source.had_bom,
            source.encoding,
        )
        store.set_meta({"report_dialect": dialect})
        default = default_report(config.input, job, dry_run=config.dry_run)
        report = (config.report or default).resolve()
        check_report_path(report, inputs)  # stdin's default name is known only now
        if config.dry_run:
            print_plan(out, config, summary, _examples(config, summary))
            _describe_existing(folder, job, report, out)
            return dry_run_report(store, config, report, summary, out, job)
        store.set_meta(
            {
                "job": job,
                "input": config.input,
                "input_path": str(Path(config.input).resolve()) if inputs else None,
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "report": str(report),
                **config.to_meta(),
                "plan": _summary_meta(summary),
                "properties": config.portal.to_meta() if config.portal else None,
            }
        )
    return job, report, summary


def dry_run_report(
    store: JobStore,
    config: RunConfig,
    report: Path,
    summary: PlanSummary,
    out: Reporter,
    job: str,
) -> int:
    """A dry run's report; with a token and reading on, it first reads the leads the plan
    would write (the reads only go to the scratch store) and shows what would change."""
    stats: SendStats | None = None
    if config.token is not None and config.backup and summary.bundles:
        diff = diff_path(report)
        check_report_path(diff, columns=DIFF_COLUMNS)
        target = config.target()
        sample = store.sample(RESUMABLE, config.sample) if config.sample else None
        reading = _read_phase(store, config, RESUMABLE, target, only=sample)
        stats = asyncio.run(_send(store, config, [reading], target, out))
        fields = write_diff(store, diff)
        read = summary.bundles if sample is None else len(sample)
        scale = summary.bundles / read if read else 1.0
        noun = plural(summary.bundles, config.rules().noun)
        if sample is not None and read < summary.bundles:
            out.info(
                f"  read {read} of {summary.bundles} {noun}, spread evenly through the file; "
                "the counts below are projected from them (--sample all reads every one)",
                event="sample",
                read=read,
                bundles=summary.bundles,
            )
        projected = "~" if scale != 1.0 else ""
        for name, (change, same) in sorted(fields.items()):
            out.info(
                f"  {name}: {projected}{round(change * scale)} {noun} would change, "
                f"{projected}{round(same * scale)} already hold the new value",
                event="diff_field",
                field=name,
                change=round(change * scale),
                already=round(same * scale),
                projected=scale != 1.0,
            )
        out.info(f"diff: {diff} (guid, field, current, new)", event="diff", path=str(diff))
        if stats.stop_reason is not None:
            out.warn(f"reading stopped: {stats.stop_detail}", event="stopped")
    elif config.backup and summary.bundles:
        out.info(
            "no token: the dry run stays offline; with one it would read the leads and show "
            "what would change",
            event="offline",
        )
    elif summary.bundles:
        out.info(
            "--no-backup: nothing is read, so no diff, no skipping of values already so, "
            "and no undo for this job",
            event="no_backup",
        )
    counts = write_report(store, report, dry_run=True)
    code = EXIT_OK if counts[RowOutcome.INVALID] == 0 else EXIT_ROWS_FAILED
    out.summary(counts, stats, str(report), exit_code=code, job=job)
    return code


def _describe_existing(folder: JobFolder, job: str, report: Path, out: Reporter) -> None:
    """A dry run of a job that exists says what a real run would still send; it never writes
    over that job's report."""
    path = folder.path(job)
    if not path.exists():
        return
    with JobStore(path) as store:
        done, left = store.progress()
        if store.meta().get("report") == str(report):
            raise UsageError(
                f"{report} is the report of job {job}, which has run; a dry run writes its own "
                "report: drop --report or give another path"
            )
    out.info(
        f"job {job} exists: {done} leads already updated; running it would send {left} more",
        event="existing_job",
        job=job,
        done=done,
        left=left,
    )


def retry(name: str, config: RunConfig, out: Reporter, *, all_failed: bool = False) -> int:
    """``bulkleads retry``: send again what can succeed: ``not_sent`` leads and failures whose
    last answer was transient; with ``all_failed``, final failures (a 404 stays a 404) too."""
    folder = JobFolder(config.state_dir)
    path = folder.find(name)
    with folder.lock_for(path):
        with JobStore(path) as store:
            store.check()
            meta = store.meta()
            moved = store.requeue(all_failed=all_failed)
            left = store.bundle_states().get(State.FAILED, 0)
        config.from_meta(meta)
        report = Path(str(meta["report"]))
        noun = config.rules().noun
        stays = (
            f"; {_count(left, noun)} failed for good {'is' if left == 1 else 'are'} left alone "
            "(--all-failed sends them)"
            if left
            else ""
        )
        out.info(
            f"retry: sending again {_count(moved['not_sent'], noun)} not sent and "
            f"{_count(moved['transient'], noun)} failed on a transient answer"
            + (f" and {_count(moved['final'], noun)} failed for good" if all_failed else "")
            + stays,
            event="retry",
            **moved,
            final_left=left,
        )
        return send_and_report(path, config, report, (State.PENDING,), out)


def _count(count: int, noun: str) -> str:
    return f"{count} {plural(count, noun)}"


def write_job_report(
    name: str,
    state_dir: Path | None,
    report: Path | None,
    out: Reporter,
    *,
    page: Path | None = None,
) -> int:
    """``bulkleads report``: write a job's report again from its store; with ``page``, its
    HTML page (pace and outcomes) too."""
    folder = JobFolder(state_dir)
    path = folder.find(name)
    with folder.lock_for(path), JobStore(path) as store:
        store.check()
        meta = store.meta()
        target = (report or Path(str(meta["report"]))).resolve()
        source = str(meta.get("input", "-"))
        inputs = [] if source == "-" else [Path(source)]
        check_report_path(target, inputs)
        if page is not None:
            page = page.resolve()
            check_page_path(page, [*inputs, path, target])
        counts = write_report(store, target)
        if page is not None:
            drawn = write_html(store, page)
            out.info(f"page: {page} ({drawn} requests drawn)", event="page", path=str(page))
    code = _exit_code(counts, None)
    out.summary(
        counts,
        None,
        str(target),
        exit_code=code,
        job=job_of(path),
        page=str(page) if page else None,
    )
    return code


def open_job(
    folder: JobFolder, scratch: Path, job: str, *, fresh: bool, out: Reporter, noun: str = "lead"
) -> Path:
    """The job's file: the existing one to resume, or the new plan. Call holding the lock."""
    moved = folder.adopt_legacy(job)
    if moved is not None:
        out.info(
            f"job {job} was in {moved.parent}, the old default folder; it now lives in "
            f"{folder.root}",
            event="job_moved",
            job=job,
            origin=str(moved.parent),
            folder=str(folder.root),
        )
    existing = folder.path(job)
    if existing.exists() and not fresh:
        with JobStore(existing) as store:
            store.check()
            done, left = store.progress()
        out.info(
            f"resuming job {job}: {done} {plural(done, noun)} already updated, {left} to send "
            "(--fresh starts over)",
            event="resume",
            job=job,
            done=done,
            left=left,
        )
        return existing
    if existing.exists():
        archived = folder.archive(job)
        out.info(f"--fresh: the previous run of this job is kept as {archived}", event="fresh")
    out.info(f"job {job}", event="job", job=job)
    return folder.adopt(scratch, job)


def send_and_report(
    path: Path, config: RunConfig, report: Path, states: tuple[str, ...], out: Reporter
) -> int:
    assert config.token is not None
    with JobStore(path) as store:
        store.set_meta(config.pace_meta())  # the latest run's pace is the one a retry reuses
        target = config.target()
        phases = _phases(store, config, states, target)
        todo = any(phase.pending() for phase in phases)
        stats = asyncio.run(_send(store, config, phases, target, out)) if todo else None
        counts = write_report(store, report)
        verified = store.verified_count() if config.verify else None
    code = _exit_code(counts, stats)
    out.summary(counts, stats, str(report), exit_code=code, job=job_of(path), verified=verified)
    if stats is not None and stats.stop_reason is not None:
        out.warn(f"stopped: {stats.stop_detail}", event="stopped", reason=stats.stop_reason)
    if counts[RowOutcome.DEFERRED] or counts[RowOutcome.NOT_SENT]:
        out.warn(
            f"to resume, run the same command again: {config.command}",
            event="resume_hint",
            command=config.command,
        )
    return code


def _phases(
    store: JobStore, config: RunConfig, states: tuple[str, ...], target: Target
) -> list[Phase]:
    """Read (back up and diff) unless --no-backup, write, then verify when asked."""
    phases: list[Phase] = [_read_phase(store, config, states, target)] if config.backup else []
    phases.append(WritePhase(store, target, states, read=True if config.backup else None))
    if config.verify:
        phases.append(VerifyPhase(store, target))
    return phases


def _read_phase(
    store: JobStore,
    config: RunConfig,
    states: tuple[str, ...],
    target: Target,
    *,
    only: frozenset[str] | None = None,
) -> ReadPhase:
    return ReadPhase(
        store,
        target,
        states,
        only_empty=config.only_empty,
        force=config.force,
        is_empty=config.rules().is_empty,
        only=only,
    )


async def _send(
    store: JobStore, config: RunConfig, phases: list[Phase], target: Target, out: Reporter
) -> SendStats:
    """Each phase in turn through one pacer, so reads and writes together keep the pace;
    a phase that stops (token, daily limit, signal) ends the run. The portal's memory gives
    the pacer the requests of the runs just before this one, and takes this one's."""
    loop = asyncio.get_running_loop()
    memory = PortalMemory.load(JobFolder(config.state_dir).root, config.base_url, config.token)
    pacer = Pacer(
        *config.pace(),
        made=[*config.made, *memory.made(loop.time())],
        explicit=config.rate is not None,
        portal=memory.limit,
    )
    timeline = Timeline(store, store.next_run())
    limits = httpx.Limits(
        max_connections=config.send.concurrency, max_keepalive_connections=config.send.concurrency
    )
    total = SendStats()
    try:
        async with httpx.AsyncHTTPTransport(limits=limits) as transport:
            for phase in phases:
                todo = phase.pending()
                if not todo:
                    continue
                progress = out.progress(todo, phase.label)
                sender = Sender(
                    store,
                    target,
                    pacer,
                    transport,
                    config.send,
                    timeout=config.timeout,
                    on_result=progress.advance,
                    timeline=timeline,
                )
                _install_signal_handlers(sender, out, config.command)
                try:
                    total.add(await sender.run(phase=phase))
                finally:
                    progress.close()
                    _remove_signal_handlers()
                if total.stop_reason is not None:
                    break
    finally:
        memory.save(pacer, loop.time())
    total.limit, total.utilization = pacer.limit(), pacer.utilization()
    if total.requests:  # what the page of `report --html` draws this run against
        runs = store.meta().get("runs")
        store.set_meta(
            {
                "runs": [
                    *(runs if isinstance(runs, list) else []),
                    {
                        "run": timeline.run,
                        "limit": total.limit.requests,
                        "window": total.limit.window,
                        "utilization": total.utilization,
                    },
                ]
            }
        )
    return total


def _install_signal_handlers(sender: Sender, out: Reporter, command: str) -> None:
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        name = signal.Signals(signum).name
        if sender.stats.stop_reason == "signal":
            out.warn(
                f"{name} again: exiting now; the job is consistent, and running the same "
                f"command resumes it: {command}"
            )
            os._exit(EXIT_ABORTED)
        out.warn(
            f"{name}: finishing requests in flight, then writing the report "
            "(press Ctrl-C again to exit at once)"
        )
        sender.stop("signal", f"stopped by {name}")

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)


def _remove_signal_handlers() -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(sig)


def _exit_code(counts: Counter[str], stats: SendStats | None) -> int:
    if counts[RowOutcome.DEFERRED] or (
        stats is not None and stats.stop_reason in ("daily", "signal")
    ):
        return EXIT_STOPPED
    if counts[RowOutcome.FAILED] or counts[RowOutcome.INVALID] or counts[RowOutcome.NOT_SENT]:
        return EXIT_ROWS_FAILED
    return EXIT_OK


def print_plan(
    out: Reporter,
    config: RunConfig,
    summary: PlanSummary,
    examples: list[str],
    job: Path | None = None,
) -> None:
    """The plan before sending; given a ``job`` file that has run before, its cost is what is
    left of that job, not the whole input."""
    limit, pace = config.pace_choice(
        PortalMemory.load(JobFolder(config.state_dir).root, config.base_url, config.token)
    )
    left = None
    if job is not None:
        with JobStore(job) as store:
            states = store.bundle_states()
            if any(states.get(s) for s in (State.DONE, State.FAILED, State.NOT_SENT)):
                left = (store.count(RESUMABLE), store.count(RESUMABLE, read=False))
    for name, pairs in sorted((config.portal.labels if config.portal else {}).items()):
        shown = ", ".join(f"{label!r} as {value!r}" for label, value in sorted(pairs)[:5])
        out.info(
            f"  {name}: option labels sent as their values: {shown}",
            event="option_labels",
            field=name,
        )
    out.plan(
        summary,
        limit=limit,
        pace=pace,
        examples=examples,
        per_request=config.bundles_per_request(),
        reads_per_request=config.bundles_per_request() if config.backup else None,
        verify=config.verify,
        noun=config.rules().noun,
        left=left,
    )


def _examples(config: RunConfig, summary: PlanSummary) -> list[str]:
    """Two request lines with their bodies, the token shown as ``***``."""
    return config.api.examples(config.base_url, summary.examples)


def _summary_meta(summary: PlanSummary) -> dict[str, object]:
    return {
        "records": summary.records,
        "invalid": summary.invalid,
        "bundles": summary.bundles,
        "skipped": summary.skipped,
        "conflicts": summary.conflicts,
    }


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(
            f"unknown --timezone {name!r}; use an IANA name such as "
            "Europe/Berlin or America/New_York"
        ) from None


def _duration_words(seconds: float) -> str:
    """``42 s``, ``3 min``, ``2 h``: how long ago, roughly."""
    if seconds < 90:
        return f"{max(0, round(seconds))} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{round(seconds / 3600)} h"


def resume_command(argv: list[str] | None = None) -> str:
    """The command line that runs this job again (it never holds the token)."""
    args = sys.argv[1:] if argv is None else argv
    return shlex.join(["bulkleads", *args])
