"""``bulkleads undo JOB``: put back the values a job overwrote.

HubSpot has no undo for an API update; bulkleads keeps each lead's previous values (the read
phase's backup) in the job store, and undo turns them into a job of its own. The backup is a
:class:`~bulkleads.input.text.Source` like an input file, so the undo job is planned, locked, paced,
resumed and reported exactly like any other. Before writing, the undo job reads each lead: one
that no longer holds what the job wrote (someone or something changed it since) is skipped with
a note naming the field and both values, unless ``--force``. An undo is a job with backups too,
so undoing an undo restores the job's values.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from bulkleads.bundle import State
from bulkleads.errors import UsageError
from bulkleads.fields import plural
from bulkleads.input.text import Format, Record
from bulkleads.jobstore import meta as job_meta
from bulkleads.jobstore.folder import job_id
from bulkleads.jobstore.meta import JobMeta
from bulkleads.jobstore.store import JobStore
from bulkleads.pipeline.dry_run import dry_run_report
from bulkleads.pipeline.lifecycle import Planned, print_plan, run_planned
from bulkleads.pipeline.portal import read_portal
from bulkleads.pipeline.settings import InputSpec, Run, default_report
from bulkleads.plan.options import PlanOptions
from bulkleads.plan.planner import plan
from bulkleads.report.rows import check_report_path
from bulkleads.report.screen import Reporter

# An undo reads no file; its job id has always counted an input read with no flags.
_UNDO_INPUT: Final = InputSpec(path="").identity()
_to_json: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode


class UndoSource:
    """A finished job's backups as input records: one per updated lead, its key plus the
    previous value of every field the job sent (JSON values, so ``null`` clears)."""

    format: Format = "jsonl"
    header: list[str] = []  # noqa: RUF012 - a JSON-lines source has none
    path = ""  # no file: a job's backups
    encoding_label = None

    def __init__(self, store: JobStore, key: str) -> None:
        self._store = store
        self._key = key
        self._digest = hashlib.sha256()
        self.bytes_read = 0
        self.unrestorable = 0  # updated leads with no readable backup (none, or damaged)

    @property
    def content_hash(self) -> str:
        """Final once the records are exhausted."""
        return self._digest.hexdigest()

    def records(self) -> Iterator[Record]:
        row = 0
        for guid, body, before in self._store.updated():
            if before is None:
                self.unrestorable += 1
                continue
            row += 1
            values = {self._key: guid, **{name: before.get(name) for name in body}}
            line = _to_json(values).encode()
            self._digest.update(line + b"\n")
            self.bytes_read += len(line) + 1
            yield Record(row, row, values)

    def expectations(self) -> Iterator[tuple[str, str]]:
        """``(expect_json, guid)``: what each lead must still hold, the values the job sent."""
        for guid, body, before in self._store.updated():
            if before is not None:
                yield _to_json(body), guid


def undo_report(report: Path, *, dry_run: bool = False) -> Path:
    """``closes.report.csv`` -> ``closes.undo.report.csv`` (``.undo.dry-run.report.csv``)."""
    stem = report.name.removesuffix(".csv").removesuffix(".report")
    return report.with_name(f"{stem}.undo{'.dry-run' if dry_run else ''}.report.csv")


def undo(name: str, run: Run, out: Reporter) -> int:
    """Plan the reverse of job ``name`` and run it (or preview it with ``--dry-run``)."""
    folder = run.job.folder()
    original = folder.find(name)
    with (
        folder.planning(keep=not run.job.dry_run) as scratch,
        folder.lock_for(original),
        JobStore(original) as done,
    ):
        done.check()
        run = read_portal(_of_job(run, done), out)
        planned = _plan_undo(done, scratch, run, out)
        if run.job.dry_run:  # a preview: read and reported from the scratch file
            with JobStore(scratch) as store:
                print_plan(out, run, planned.summary, [])
                return dry_run_report(store, run, planned.report, planned.summary, out, planned.job)
    return run_planned(folder, scratch, planned, run, out)


def _of_job(run: Run, done: JobStore) -> Run:
    """The undo's run: the job's API and URL, and always reading first (its own backup, and
    the check that a record still holds what the job wrote). Resuming the undo runs the undo
    again, not the job: its command stays its own."""
    meta = JobMeta.read(done)
    if not meta.backup:
        original = meta.job or done.path.name
        raise UsageError(
            f"job {original} ran with --no-backup (or before bulkleads kept backups): it holds "
            "no previous values, so there is nothing to restore"
        )
    saved = {**meta.api_options, "create": False}  # an undo creates nothing
    run = run.of_job(replace(meta, api_options=saved))
    return replace(run, reading=replace(run.reading, backup=True, only_empty=()))


def _plan_undo(done: JobStore, scratch: Path, run: Run, out: Reporter) -> Planned:
    """The undo job planned into ``scratch``: its id, report and plan."""
    meta = JobMeta.read(done)
    original = meta.job or done.path.name
    rules = run.rules()
    source = UndoSource(done, rules.key)
    with JobStore(scratch) as store:
        summary = plan(source, store, PlanOptions(allow_custom_fields=True), UTC, rules=rules)
        store.set_expect(source.expectations())
        created = _plan_archives(done, store, after=summary.records)
        unlinks = _plan_unlinks(done, store, after=summary.records + len(created))
        # the plan counts the rows the report will have: records to archive and records
        # with only links to remove are rows of the undo too
        summary.records = store.row_count()
        job_meta.write(store, {"report_dialect": meta.report_dialect})  # like the job's report
        identity = {
            "undo_of": original,
            "force": run.reading.force,
            **run.connection.identity(),
            **_UNDO_INPUT,
            **run.reading.identity(),
        }
        if created:
            identity["archive"] = created
        if unlinks:
            identity["unlink"] = unlinks
        job = job_id(source.content_hash, identity)
        done_report = Path(meta.report or default_report(meta.input, original))
        report = run.job.report or undo_report(done_report, dry_run=run.job.dry_run)
        report = report.resolve()
        check_report_path(report)
        missing = source.unrestorable
        noun = plural(summary.bundles, rules.noun)
        out.info(
            f"undo of job {original}: {summary.bundles} {noun} to put back"
            + (f", {len(created)} it created to archive" if created else "")
            + (f", {unlinks} {plural(unlinks, 'link')} it added to remove" if unlinks else "")
            + (
                f"; {missing} updated without a readable backup cannot be (no backup, or a "
                "damaged one)"
                if missing
                else ""
            )
            + (
                ""
                if run.reading.force
                else f"; a {rules.noun} changed since the job is skipped (--force writes it anyway)"
            ),
            event="undo",
            job=original,
            leads=summary.bundles,
            archive=len(created),
            unrestorable=source.unrestorable,
        )
        if run.job.dry_run:
            return Planned(job, report, summary)
        job_meta.write(
            store,
            {
                "job": job,
                "input": f"undo of {original}",
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "undo_of": original,
                "association_types": meta.association_types,  # to remove the same
                "report": str(report),
                **run.to_meta(),
            },
        )
    return Planned(job, report, summary)


def _plan_unlinks(done: JobStore, store: JobStore, *, after: int) -> int:
    """The links job ``done`` added, as links the undo removes: each on its record's row, or
    on a row of its own when the undo has nothing else to put back for that record. A record
    the job created is archived instead (which removes its links). Returns how many."""
    created = {key for key, _ in done.created()}
    made = [link for link in done.links.made() if link[0] not in created]
    if not made:
        return 0
    rows = dict(store.bundle_rows())
    extra = [guid for guid in dict.fromkeys(guid for guid, *_ in made) if guid not in rows]
    numbered = {guid: after + i for i, guid in enumerate(extra, 1)}
    store.add_rows((row, row, guid, None, None, None) for guid, row in numbered.items())
    store.add_bundles(
        (guid, "{}", row, State.SKIPPED, "nothing to put back but links")
        for guid, row in numbered.items()
    )
    rows.update(numbered)
    store.links.add_unlinks(
        (guid, obj, value, rows[guid], from_id, to_id, existed)
        for guid, obj, value, from_id, to_id, existed in made
    )
    return len(made)


def _plan_archives(done: JobStore, store: JobStore, *, after: int) -> list[str]:
    """The records job ``done`` created, as rows of the undo job after its ``after`` rows:
    each a bundle to archive by its id. Returns their ids."""
    created = done.created()
    numbered = [(after + i, key, record_id) for i, (key, record_id) in enumerate(created, 1)]
    store.add_rows((row, row, key, None, None, None) for row, key, _ in numbered)
    store.add_bundles((key, "{}", row, State.PENDING, None) for row, key, _ in numbered)
    store.set_action(("archive", record_id, "{}", key) for _, key, record_id in numbered)
    return [record_id for _, record_id in created]
