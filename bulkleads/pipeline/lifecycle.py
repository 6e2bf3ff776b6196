"""A planned job's life: plan into the job store, send what is not yet confirmed, write the
report.

A command turns its flags into the frozen values of :mod:`bulkleads.pipeline.settings` and
calls :func:`update`, :func:`retry` or (through :mod:`bulkleads.pipeline.undo`)
:func:`run_planned`; all wiring between input, plan, job store, sending and report happens
here, so the commands stay thin and these functions can be driven from tests directly.
"""

from __future__ import annotations

import asyncio
import shlex
import sys
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bulkleads.bundle import RESUMABLE, State
from bulkleads.errors import UsageError
from bulkleads.fields import brief, plural
from bulkleads.hubspot.associations import LINK_BATCH, READ_BATCH, SEARCH_BATCH
from bulkleads.hubspot.usage import daily_reset, reset_words
from bulkleads.jobstore import meta as job_meta
from bulkleads.jobstore.folder import JobFolder, job_id, job_of, remove_store
from bulkleads.jobstore.meta import JobMeta
from bulkleads.jobstore.store import JobStore
from bulkleads.pipeline.daily_wait import Clock, SystemClock, wait_for_reset
from bulkleads.pipeline.dry_run import describe_existing, dry_run_report
from bulkleads.pipeline.portal import check_links, forget_definitions, read_portal
from bulkleads.pipeline.settings import InputSpec, Run, default_report
from bulkleads.plan.options import PlanSummary
from bulkleads.plan.planner import plan
from bulkleads.report.failed import write_failed_rows
from bulkleads.report.page import check_page_path, write_html
from bulkleads.report.rows import (
    RowOutcome,
    check_report_path,
    count_links,
    dialect_for,
    exit_code,
    is_report,
    write_report,
)
from bulkleads.report.screen import Reporter
from bulkleads.send.interrupts import Interrupts
from bulkleads.send.runner import phases_for, send_phases

_SHOW_READING_FROM: Final = 8 * 1024 * 1024  # bytes; smaller files are read in a blink


def update(run: Run, spec: InputSpec, out: Reporter) -> int:
    """``bulkleads update``: returns the exit code."""
    if not run.job.dry_run and run.connection.token is None:
        raise UsageError("no access token")  # the CLI loads it; this guards library callers
    tz = _zone(spec.plan.timezone)
    inputs = [] if spec.path == "-" else [Path(spec.path)]
    if inputs and is_report(inputs[0]):
        raise UsageError(
            f"{spec.path} is a bulkleads report, not an input file: its columns would be "
            f"sent as fields. To send its failed rows again: bulkleads retry {spec.path}"
        )
    if run.job.report is not None or inputs:  # known before reading: refused before reading
        check_report_path(
            run.job.report or default_report(spec.path, "", dry_run=run.job.dry_run), inputs
        )
    folder = run.job.folder()
    run = read_portal(run, out)
    with folder.planning(keep=not run.job.dry_run) as scratch:
        planned, run = _plan_job(run, spec, scratch, inputs, tz, out)
        if run.job.dry_run:  # planned and reported from the scratch file, nothing kept
            with JobStore(scratch) as store:
                print_plan(out, run, planned.summary, _examples(run, planned.summary), scratch)
                describe_existing(folder, planned.job, planned.report, out, run.rules().noun)
                return dry_run_report(store, run, planned.report, planned.summary, out, planned.job)
        set_aside_unfinished(folder, planned.job, planned.report, inputs, run.job.fresh, out)
    return run_planned(folder, scratch, planned, run, out)


def set_aside_unfinished(
    folder: JobFolder, job: str, report: Path, inputs: list[Path], fresh: bool, out: Reporter
) -> None:
    """Refuse to start ``job`` over another job of the same input, or writing the same
    report, that is not finished: a changed input (a row edited, rows appended, the file
    replaced) is a new job, which would leave the old one unresumable and replace its report,
    so that an undo of that report would leave the old job's writes in place. With --fresh
    the old job is archived, and said so."""
    source = str(inputs[0].resolve()) if inputs else None
    others = [
        info
        for info in folder.list()
        if info.job_id != job
        and not info.finished
        and (
            (source is not None and info.meta.input_path == source)
            or info.meta.report == str(report)
        )
    ]
    for info in others:
        done = info.states.get(State.DONE, 0)
        left = sum(info.states.get(s, 0) for s in RESUMABLE)
        said = f"job {info.job_id} (planned {info.created}: {done} done, {left} not sent yet)"
        if not fresh:
            raise UsageError(
                f"an unfinished {said} wrote {info.meta.report} from "
                f"{info.meta.input}, which has changed since (a row edited or added, "
                "or the file replaced): this run would be a new job replacing that job's report. "
                f"Finish that job from its own file with `bulkleads retry {info.job_id}` (it "
                "sends what it planned, not today's file), or pass --fresh to archive it "
                "(`bulkleads jobs --all` keeps it listed) and run this file as a new job"
            )
        with folder.lock(info.job_id):
            archived = folder.archive(info.job_id)
        out.warn(
            f"--fresh: the unfinished {said} is archived as {archived}; its report will be "
            "replaced by this job's",
            event="archived_unfinished",
            job=info.job_id,
        )


class Planned(NamedTuple):
    """A job planned into a scratch file: its id, its report's path and what planning found."""

    job: str
    report: Path
    summary: PlanSummary


def run_planned(folder: JobFolder, scratch: Path, planned: Planned, run: Run, out: Reporter) -> int:
    """Take a job planned into ``scratch`` (a new one, or the one it resumes) and send it."""
    job, report, summary = planned
    with folder.lock(job):  # one process per job, from here until its report is written
        try:
            path = open_job(
                folder, scratch, job, fresh=run.job.fresh, out=out, noun=run.rules().noun
            )
        finally:
            remove_store(scratch)
        print_plan(out, run, summary, [], path)
        return send_and_report(path, run, report, RESUMABLE, out)


def _plan_job(
    run: Run,
    spec: InputSpec,
    scratch: Path,
    inputs: list[Path],
    tz: ZoneInfo,
    out: Reporter,
) -> tuple[Planned, Run]:
    """Plan the input into ``scratch``: the job's id, report and plan (a dry run's plan stays
    there; a job's carries its metadata, ready to be adopted), and the run knowing the
    objects the job links to."""
    with spec.open() as source, JobStore(scratch) as store:
        big = source.total_bytes is None or source.total_bytes > _SHOW_READING_FROM
        reading = out.progress(source.total_bytes, "reading", unit="bytes") if big else None
        try:
            summary = plan(
                source,
                store,
                spec.plan,
                tz,
                rules=run.rules(),
                on_progress=reading.set if reading else None,
            )
        finally:
            if reading:
                reading.close()
        run = check_links(run, spec.plan, store.links.objects(), out)
        identity = {
            **run.connection.identity(),
            **spec.identity(),
            **run.reading.identity(),
        }
        job = job_id(source.content_hash, identity)
        dialect = dialect_for(
            run.job.report_dialect,
            source.format,
            source.delimiter,
            source.had_bom,
            source.encoding,
        )
        job_meta.write(store, {"report_dialect": dialect})
        default = default_report(spec.path, job, dry_run=run.job.dry_run)
        report = (run.job.report or default).resolve()
        check_report_path(report, inputs)  # stdin's default name is known only now
        if run.job.dry_run:
            return Planned(job, report, summary), run
        job_meta.write(
            store,
            {
                "job": job,
                "input": spec.path,
                "input_path": str(Path(spec.path).resolve()) if inputs else None,
                "input_dialect": {
                    "format": source.format,
                    "encoding": source.encoding,
                    "delimiter": source.delimiter,
                    "bom": source.had_bom,
                    "sheet": getattr(source, "sheet", None),
                },
                "content_hash": source.content_hash,
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "report": str(report),
                **run.to_meta(),
                "plan": _summary_meta(summary),
                "associate_by": spec.plan.link_keys,
                "association_types": {o: k.to_meta() for o, k in run.link_types},
                "properties": run.portal.to_meta() if run.portal else None,
            },
        )
    return Planned(job, report, summary), run


def retry(name: str, run: Run, out: Reporter, *, all_failed: bool = False) -> int:
    """``bulkleads retry``: send again what can succeed: ``not_sent`` leads and failures whose
    last answer was transient (with ``all_failed``, final failures, a 404 staying a 404), and
    finish what the job has not sent yet, from its own file (its input may have changed)."""
    folder = run.job.folder()
    path = folder.find(name)
    with folder.lock_for(path):
        with JobStore(path) as store:
            store.check()
            meta = JobMeta.read(store)
            waiting = store.count(RESUMABLE)  # never sent yet: a retry finishes the job too
            moved = store.requeue(all_failed=all_failed)
            left = store.bundle_states().get(State.FAILED, 0)
        run = run.of_job(meta)
        run = replace(run, job=replace(run.job, command=meta.command))
        report = Path(meta.report or default_report(meta.input, meta.job))
        if meta.properties is None:  # planned on HubSpot's defaults, or no CRM job
            run = _recheck_on_definitions(path, run, out)
        noun = run.rules().noun
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
            + (f", and {_count(waiting, noun)} not sent yet" if waiting else "")
            + stays,
            event="retry",
            **moved,
            waiting=waiting,
            final_left=left,
        )
        return send_and_report(path, run, report, RESUMABLE, out)


def _recheck_on_definitions(path: Path, run: Run, out: Reporter) -> Run:
    """A job planned without the portal's definitions (the token lacked the scope) is
    checked against them when its retry can read them: what it has not sent is converted
    (labels to values), and what they refuse is invalid, never sent. Returns the run with
    the definitions."""
    run = read_portal(run, out)
    if run.portal is None:
        return run
    rules = run.rules()
    with JobStore(path) as store:
        invalid = store.recheck_unsent(lambda name, value: rules.coerce(name, value, UTC))
        job_meta.write(store, {"properties": run.portal.to_meta()})
    _say_invalid(out, invalid, "not sent yet", "never sent, reported invalid with the reason")
    return run


def _recheck_refusals(
    store: JobStore, run: Run, report: Path, out: Reporter
) -> Counter[str] | None:
    """The portal refused values (a 400) that were checked against definitions it may have
    changed since: they are read again at once, and a refused row the fresh ones refuse too
    is an invalid row saying why, not a failure. Returns the report's new counts, if any
    row changed."""
    forget_definitions(run)
    fresh = read_portal(replace(run, portal=None), out)
    if fresh.portal is None:
        return None
    rules = fresh.rules()
    invalid = store.recheck_unsent(lambda name, value: rules.coerce(name, value, UTC), refused=True)
    if not invalid:
        return None
    _say_invalid(out, invalid, "the portal refused", "fix them in the failed rows' file")
    return write_report(store, report)


def _say_invalid(out: Reporter, rows: int, which: str, then: str) -> None:
    """Rows found invalid against definitions read again, and what becomes of them."""
    if rows:
        verb = "is" if rows == 1 else "are"
        out.warn(
            f"{rows} {plural(rows, 'row')} {which} {verb} invalid against the portal's "
            f"definitions read again: {then}",
            event="invalid_rechecked",
            rows=rows,
        )


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
        meta = JobMeta.read(store)
        given = report or Path(meta.report or default_report(meta.input, meta.job))
        source = meta.input
        inputs = [] if source == "-" else [Path(source)]
        check_report_path(given, inputs)  # as given: /dev/stdout resolves to no file at all
        target = given.resolve()
        check_report_path(target, inputs)
        if page is not None:
            check_page_path(page, [])
            page = page.resolve()
            check_page_path(page, [*inputs, path, target])
        counts = write_report(store, target)
        links = count_links(store)
        if page is not None:
            drawn = write_html(store, page)
            out.info(f"page: {page} ({drawn} requests drawn)", event="page", path=str(page))
    code = exit_code(counts, None, links)
    out.summary(
        counts,
        None,
        str(target),
        exit_code=code,
        job=job_of(path),
        page=str(page) if page else None,
        links=links,
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
            invalid = store.replan_unsent(scratch)
            done, left = store.progress()
        if invalid:
            out.warn(
                f"{invalid} {plural(invalid, 'row')} not sent yet {'is' if invalid == 1 else 'are'}"
                " invalid against the portal's definitions of today: never sent, reported "
                "invalid with the reason",
                event="invalid_on_resume",
                rows=invalid,
            )
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
    path: Path,
    run: Run,
    report: Path,
    states: tuple[str, ...],
    out: Reporter,
    clock: Clock | None = None,
) -> int:
    """Send the job and write its report; with ``--wait-for-daily-reset``, again after each
    reset of the daily limit that stopped it, as long as each run gets somewhere."""
    while True:
        code, reset, progressed = _send_once(path, run, report, states, out)
        if reset is None or not run.job.wait_for_daily_reset:
            return code
        if not progressed:
            out.warn(
                "--wait-for-daily-reset: not one request of this run went through before the "
                "daily limit stopped it; not waiting again",
                event="daily_wait_refused",
            )
            return code
        if not wait_for_reset(reset, out, clock or SystemClock()):
            return code


def _send_once(
    path: Path, run: Run, report: Path, states: tuple[str, ...], out: Reporter
) -> tuple[int, datetime | None, bool]:
    """One run of the job: its exit code, when the daily limit starts again if it stopped
    the run (None otherwise, or when that is not known), and whether the run got anywhere
    (a request answered 2xx, or a record settled)."""
    target = run.connection.target()
    with run.portal_lock(job_of(path)), JobStore(path) as store:
        job_meta.write(store, run.pace.to_meta())  # the latest run's pace: a retry's too
        sending = run.sending()
        phases = phases_for(store, sending, states, target)
        todo = any(phase.pending() for phase in phases)
        before = store.settled()
        interrupts = Interrupts(out, run.job.command)
        try:
            stats = (
                asyncio.run(send_phases(store, sending, phases, target, out, interrupts))
                if todo
                else None
            )
            counts = write_report(store, report)
        finally:
            interrupts.done()  # a press during the report was counted with the run's
        if stats is not None and stats.statuses.get("400") and run.portal is not None:
            counts = _recheck_refusals(store, run, report, out) or counts
        failed, why = write_failed_rows(store, report)
        links = count_links(store)
        back = store.moved_back()
        verified = store.verified_count() if run.reading.verify else None
        now = store.settled() - before  # what this run settled (a retry's fixes count once)
    code = exit_code(counts, stats, links)
    out.summary(
        counts,
        stats,
        str(report),
        exit_code=code,
        job=job_of(path),
        verified=verified,
        noun=run.rules().noun,
        links=links,
        this_run=now,
        failed_rows=str(failed) if failed else None,
    )
    _say_failed_rows(out, failed, why, run.job.command)
    if back:
        out.info(
            f"{_count(back, run.rules().noun)} moved back a lifecycle stage: cleared, then set "
            "(the report's note names each move)",
            event="moved_back",
            count=back,
        )
    if stats is not None and stats.stop_reason is not None:
        out.warn(f"stopped: {stats.stop_detail}", event="stopped", reason=stats.stop_reason)
    reset = None
    if stats is not None and stats.stop_reason == "daily":
        reset = _say_daily_reset(out, run)
    if counts[RowOutcome.DEFERRED] or counts[RowOutcome.NOT_SENT] or counts[RowOutcome.UNCONFIRMED]:
        out.warn(
            f"to resume, run the same command again: {run.job.command}",
            event="resume_hint",
            command=run.job.command,
        )
    answered = stats is not None and any(s.startswith("2") for s in +stats.statuses)
    return code, reset, answered or sum(now.values()) > 0


def _say_daily_reset(out: Reporter, run: Run) -> datetime | None:
    """When the daily limit starts again: the time to run the same command (or set cron)."""
    token = run.connection.token
    reset = (
        daily_reset(run.connection.base_url, token, timeout=run.pace.timeout)
        if token is not None
        else None
    )
    waits = run.job.wait_for_daily_reset
    then = "going on then" if waits and reset is not None else "run the same command then"
    if waits and reset is None:
        then += " (--wait-for-daily-reset cannot wait for a time it does not know)"
    out.warn(
        f"the daily limit starts again {reset_words(reset)}: {then}",
        event="daily_reset",
        resets_at=reset.isoformat() if reset is not None else None,
    )
    return reset


def _say_failed_rows(out: Reporter, failed: Path | None, why: str | None, command: str) -> None:
    """Where the rows not done went, and the command that sends them once fixed."""
    if failed is not None:
        again = command.replace(shlex.quote(str(failed)), "FILE") if command else ""
        out.warn(
            f"failed rows: {failed}: fix them there and run it, e.g. "
            + (f"the same command on it ({again})" if again else f"bulkleads update {failed}"),
            event="failed_rows",
            path=str(failed),
        )
    elif why is not None:
        out.warn(f"no failed rows' file: {why}", event="failed_rows", path=None)


def print_plan(
    out: Reporter,
    run: Run,
    summary: PlanSummary,
    examples: list[str],
    job: Path | None = None,
) -> None:
    """The plan before sending; given a ``job`` file that has run before, its cost is what is
    left of that job, not the whole input."""
    limit, pace = run.pace.choice(run.api, run.memory())
    left = None
    links = (0, 0, 0)
    if job is not None:
        with JobStore(job) as store:
            states = store.bundle_states()
            if any(states.get(s) for s in (State.DONE, State.FAILED, State.NOT_SENT)):
                left = (store.count(RESUMABLE), store.count(RESUMABLE, read=False))
            links = store.links.requests_left(SEARCH_BATCH, READ_BATCH, LINK_BATCH)
    for name, pairs in sorted((run.portal.labels if run.portal else {}).items()):
        shown = ", ".join(f"{label!r} as {value!r}" for label, value in sorted(pairs)[:5])
        out.info(
            f"  {name}: option labels sent as their values: {shown}",
            event="option_labels",
            field=name,
        )
    per_request = run.api.per_request
    out.plan(
        summary,
        limit=limit,
        pace=pace,
        examples=examples,
        per_request=per_request,
        reads_per_request=per_request if run.reading.backup else None,
        verify=run.reading.verify,
        noun=run.rules().noun,
        left=left,
        links=links,
    )


def _examples(run: Run, summary: PlanSummary) -> list[str]:
    """Two request lines with their bodies, the token shown as ``***`` and long values cut."""
    bodies = [{name: brief(value) for name, value in body.items()} for body in summary.examples]
    return run.api.examples(run.connection.base_url, bodies)


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


def resume_command(argv: list[str] | None = None) -> str:
    """The command line that runs this job again (it never holds the token)."""
    args = sys.argv[1:] if argv is None else argv
    return shlex.join(["bulkleads", *args])
