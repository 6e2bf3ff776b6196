"""A dry run: the plan and its report, and with a token a sample read of what would change."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bulkleads.bundle import RESUMABLE, State
from bulkleads.errors import EXIT_OK, EXIT_ROWS_FAILED, UsageError
from bulkleads.fields import plural
from bulkleads.jobstore import meta as job_meta
from bulkleads.jobstore.folder import JobFolder
from bulkleads.jobstore.meta import JobMeta
from bulkleads.jobstore.store import JobStore
from bulkleads.pipeline.settings import Run
from bulkleads.plan.options import PlanSummary
from bulkleads.report.rows import (
    DIFF_COLUMNS,
    RowOutcome,
    check_report_path,
    diff_path,
    write_diff,
    write_report,
)
from bulkleads.report.screen import Reporter
from bulkleads.send.interrupts import Interrupts
from bulkleads.send.pool import SendStats
from bulkleads.send.runner import read_phase, send_phases


def dry_run_report(
    store: JobStore,
    run: Run,
    report: Path,
    summary: PlanSummary,
    out: Reporter,
    job: str,
) -> int:
    """A dry run's report; with a token and reading on, it first reads the leads the plan
    would write (the reads only go to the scratch store) and shows what would change."""
    stats: SendStats | None = None
    interrupts = Interrupts(out, run.job.command)
    job_meta.write(store, {"key_column": run.rules().key})
    backup = run.reading.backup
    if run.connection.token is not None and backup and summary.bundles:
        stats = _read_and_show(store, run, report, summary, out, interrupts)
    elif backup and summary.bundles:
        out.info(
            "no token: the dry run stays offline; with one it would read the "
            f"{plural(2, run.rules().noun)} and show what would change",
            event="offline",
        )
    elif summary.bundles:
        out.info(
            "--no-backup: nothing is read, so no diff, no skipping of values already so, "
            "and no undo for this job",
            event="no_backup",
        )
    try:
        counts = write_report(store, report, dry_run=True)
    finally:
        interrupts.done()
    refused = stats is not None and stats.stop_reason == "auth"  # nothing could be read
    code = EXIT_OK if counts[RowOutcome.INVALID] == 0 and not refused else EXIT_ROWS_FAILED
    out.summary(counts, stats, str(report), exit_code=code, job=job)
    return code


def _read_and_show(
    store: JobStore,
    run: Run,
    report: Path,
    summary: PlanSummary,
    out: Reporter,
    interrupts: Interrupts,
) -> SendStats:
    """Read the sample (or every record), write the diff file and say, per field, how many
    records would change: projected from exactly the records read when a sample was drawn."""
    diff = diff_path(report)
    check_report_path(diff, columns=DIFF_COLUMNS)
    target = run.connection.target()
    sample = store.sample(RESUMABLE, run.reading.sample) if run.reading.sample else None
    sending = run.sending()
    reading = read_phase(store, sending, RESUMABLE, target, only=sample)
    stats = asyncio.run(send_phases(store, sending, [reading], target, out, interrupts))
    fields = write_diff(store, diff, sample)
    tried = summary.bundles if sample is None else len(sample)
    # those whose current values came back, among what was asked (records to archive hold
    # no values to read)
    read = store.count(tuple(State), read=True, among=sample)
    scale = summary.bundles / read if read and sample is not None else 1.0
    noun = plural(summary.bundles, run.rules().noun)
    if sample is not None and tried < summary.bundles:
        missed = f"; {tried - read} could not be read (see the report)" if read < tried else ""
        out.info(
            f"  read {tried} of {summary.bundles} {noun}, drawn at random through the file"
            f"{missed}; the counts below are projected from the {read} read "
            "(--sample all reads every one)",
            event="sample",
            read=read,
            tried=tried,
            bundles=summary.bundles,
        )
    projected = "~" if scale != 1.0 else ""
    creating = store.count(tuple(State), action="create", among=sample)
    if creating:
        out.info(
            f"  {projected}{round(creating * scale)} {plural(creating, run.rules().noun)} "
            f"would be created (no record has the {run.rules().key}: --create)",
            event="create",
            count=round(creating * scale),
            projected=scale != 1.0,
        )
    back = store.count(tuple(State), action="clear", among=sample)
    if back:
        out.info(
            f"  {projected}{round(back * scale)} {plural(back, run.rules().noun)} would move "
            "back a lifecycle stage: each is sent as a clear, then the stage (HubSpot ignores "
            "a move back sent as one write)",
            event="moves_back",
            count=round(back * scale),
            projected=scale != 1.0,
        )
    for name, (change, same, moved) in sorted(fields.items()):
        since = (
            f", {projected}{round(moved * scale)} changed since the job (skipped; --force "
            "writes them)"
            if moved
            else ""
        )
        out.info(
            f"  {name}: {projected}{round(change * scale)} {noun} would change, "
            f"{projected}{round(same * scale)} already hold the new value{since}",
            event="diff_field",
            field=name,
            change=round(change * scale),
            already=round(same * scale),
            changed_since=round(moved * scale),
            projected=scale != 1.0,
        )
    key = run.rules().key
    out.info(f"diff: {diff} ({key}, field, current, new)", event="diff", path=str(diff))
    if stats.stop_reason is not None:
        out.warn(f"reading stopped: {stats.stop_detail}", event="stopped")
    return stats


def describe_existing(
    folder: JobFolder, job: str, report: Path, out: Reporter, noun: str = "lead"
) -> None:
    """A dry run of a job that exists says what a real run would still send; it never writes
    over that job's report."""
    path = folder.path(job)
    if not path.exists():
        return
    with JobStore(path) as store:
        done, left = store.progress()
        if JobMeta.read(store).report == str(report):
            raise UsageError(
                f"{report} is the report of job {job}, which has run; a dry run writes its own "
                "report: drop --report or give another path"
            )
    out.info(
        f"job {job} exists: {done} {plural(done, noun)} already updated; running it would "
        f"send {left} more",
        event="existing_job",
        job=job,
        done=done,
        left=left,
    )
