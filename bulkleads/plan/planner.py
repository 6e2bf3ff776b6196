"""Records → validated rows → one bundle per guid, written into the job store.

Everything is checked here, before the first request: a row that cannot be sent is marked
invalid with its reason, and the rows of every other lead still go through. Rows stream into
the store; bundles are then merged one guid at a time from the store, so memory does not grow
with the file.

What a cell means:
- an empty (or all-blank) CSV cell leaves the field unchanged: ``""`` is never sent for it;
- ``--clear-token`` in CSV, or ``null``/``""`` in JSONL, clears the field: ``""`` for a text
  field, ``0`` for a timestamp; a boolean cannot be cleared, so that row is invalid;
- two rows of one guid setting a field to different values are a conflict that
  ``--on-conflict`` settles (``last`` wins by default; the loser's note names the winner).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, tzinfo
from functools import lru_cache
from itertools import groupby, islice
from pathlib import Path
from typing import Final, TypeVar

from bulkleads.bundle import State
from bulkleads.fields import CLEAR, LEADS_V1, FieldError, FieldRules, Value, local_date
from bulkleads.input.text import Record, Source
from bulkleads.jobstore.links import PREFIX
from bulkleads.jobstore.store import JobStore, RowRecord
from bulkleads.plan import links as link_columns
from bulkleads.plan.columns import FAILED_COLUMNS, KEY, Columns, check_header, check_names
from bulkleads.plan.options import ConflictPolicy, PlanOptions, PlanSummary

_BATCH: Final = 5000
_CELL_CACHE: Final = 1 << 16
# One encoder for every body: json.dumps with options builds a new encoder per call.
_to_json: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_T = TypeVar("_T")


def plan(
    source: Source,
    store: JobStore,
    options: PlanOptions,
    tz: tzinfo = UTC,
    on_progress: Callable[[int], None] | None = None,
    rules: FieldRules = LEADS_V1,
) -> PlanSummary:
    """Read every record, validate it, and write rows and bundles into ``store``."""
    columns = Columns(options, rules.key)
    allowed = frozenset(options.allow_fields)
    summary = PlanSummary(encoding=source.encoding_label)
    # JSON lines name their fields row by row: may link
    linked = bool(rules.associable) or rules.links_any
    if source.format == "jsonl" and ".failed." in Path(source.path).name:
        columns.take_header(list(FAILED_COLUMNS))  # our failed rows' file, sent again
    if source.format != "jsonl":
        columns.take_header(source.header)
        check_header(source.header, columns, allowed, summary, rules)
        named = [columns.field_for(name) for name in source.header]
        linked = linked and any(link_columns.target(n) is not None for n in named if n)
        link_columns.check_columns(
            [n for n in named if n],
            rules.associable,
            rules.noun,
            {**options.link_keys, **dict(options.association_labels)},
            source.header,
            links_any=rules.links_any,
        )
        check_names(
            [n for n in named if n and n != KEY and link_columns.target(n) is None], rules, options
        )
    unknown: set[str] = set()
    coerce = _cached_coerce(rules, tz)
    rows = (
        _validate(
            record, columns, options, allowed, coerce, unknown, rules, csv=source.format != "jsonl"
        )
        for record in source.records()
    )
    for batch in _batches(rows, _BATCH):
        store.add_rows(batch)
        summary.records += len(batch)
        for row, line, guid, _fields, _names, error in batch:
            if error is not None:
                summary.invalid += 1
                if len(summary.invalid_examples) < 10:
                    summary.invalid_examples.append((row, line, guid, error))
        if on_progress:
            on_progress(source.bytes_read)
    check_names(sorted(unknown), rules, options)  # JSONL names its fields row by row
    summary.custom_fields = sorted(unknown)
    _merge(store, options.on_conflict, summary)
    if linked:  # link columns' values leave the bodies for the job's links (one pass)
        by_id = {obj: False for obj in options.link_keys}  # the others' values are ids
        summary.links = store.links.take_from_bundles(by_id, from_by_id=rules.key == "id")
    return summary


def _validate(
    record: Record,
    columns: Columns,
    options: PlanOptions,
    allowed: frozenset[str],
    coerce: Callable[[str, object], Value],
    unknown: set[str],
    rules: FieldRules,
    *,
    csv: bool,
) -> RowRecord:
    """One record → ``(row, line, guid, fields_json, names, error)`` for the store."""
    if record.values is None:
        return record.row, record.line, None, None, None, record.error
    guid: str | None = None
    changes: dict[str, object] = {}
    errors: list[str] = []
    for key, raw in record.values.items():
        name = columns.field_for(key)
        if name is None:
            continue
        if name == KEY:
            guid = rules.normalize_key(str(raw).strip()) if raw is not None else None
            continue
        if (linked := link_columns.target(name)) is not None:
            if raw is None or not str(raw).strip():
                continue
            if linked not in rules.associable and not rules.links_any:
                errors.append(f"{name}: a {rules.noun} cannot be linked to {linked}")
                continue
            try:
                changes[name] = link_columns.cell(linked, raw, options.link_keys)
            except FieldError as exc:
                errors.append(str(exc))
            continue
        if csv:
            if not isinstance(raw, str) or not raw.strip():
                continue
            value: object = CLEAR if raw == options.clear_token else raw
        else:
            value = CLEAR if raw is None or raw == "" else raw
            if name in rules.not_editable and name not in allowed:
                errors.append(f"{name} cannot be edited through the API")
                continue
        if name not in rules.known:
            unknown.add(name)
        try:
            if options.date_formats and isinstance(value, str) and rules.is_date(name):
                value = _local_date(name, value, options.date_formats)
            changes[name] = coerce(name, value)
        except FieldError as exc:
            errors.append(str(exc))
    if rules.check_row is not None and not errors:
        try:
            changes = rules.check_row(changes, {})
        except FieldError as exc:
            errors.append(str(exc))
    if not guid:
        errors.insert(0, f"{rules.key} is missing")
    elif (problem := rules.key_error(guid)) is not None:
        errors.insert(0, problem)
        guid = guid[:200]
    error = "; ".join(errors) if errors else None
    body = None if error else _to_json(changes)
    names = ";".join(changes) if changes and not error else None
    return record.row, record.line, guid, body, names, error


@lru_cache(maxsize=4096)  # exports repeat the same few dates on many rows
def _local_date(name: str, text: str, formats: tuple[str, ...]) -> str:
    return local_date(name, text, formats)


def _cached_coerce(rules: FieldRules, tz: tzinfo) -> Callable[[str, object], Value]:
    """``rules.coerce`` behind a bounded cache: coercion is pure, and exports repeat the same
    dates, flags and cities on many rows. Typed, so ``1`` and ``True`` stay different values."""

    @lru_cache(maxsize=_CELL_CACHE, typed=True)
    def cached(name: str, value: object) -> Value:
        return rules.coerce(name, value, tz)

    def coerce(name: str, value: object) -> Value:
        try:
            return cached(name, value)
        except TypeError:  # a JSON object or array: unhashable, and refused by coerce
            return rules.coerce(name, value, tz)

    return coerce


def _merge(store: JobStore, policy: ConflictPolicy, summary: PlanSummary) -> None:
    """Fold each guid's valid rows into one bundle, under the conflict policy."""
    bundles: list[tuple[str, str, int, str, str | None]] = []
    notes: list[tuple[int, str, str]] = []
    for guid, group in groupby(store.valid_rows_by_guid(), key=lambda t: t[0]):
        rows = list(group)
        first_row = rows[0][1]
        if len(rows) == 1:
            # The usual case: one row, whose stored changes are already the bundle's body.
            body, conflicts = rows[0][2], list[str]()
        else:
            parsed = [(r, json.loads(b)) for _, r, b in rows]
            merged, row_notes, conflicts = _fold(parsed, policy)
            body = _to_json(merged)
            for row, changes in parsed:
                if row in row_notes:  # it lost a field: the report lists only what it sent
                    sent = ";".join(n for n in changes if _same(merged[n], changes[n]))
                    notes.append((row, "; ".join(row_notes[row]), sent))
        summary.conflicts += len(conflicts)
        summary.conflicted_guids += bool(conflicts)
        if conflicts and policy == "error":
            reason = "conflicting values: " + "; ".join(conflicts)
            bundles.append((guid, "{}", first_row, State.INVALID, reason))
            summary.invalid += len(rows)
        elif body == "{}":
            bundles.append((guid, "{}", first_row, State.SKIPPED, "nothing to change"))
            summary.skipped += 1
        else:
            bundles.append((guid, body, first_row, State.PENDING, None))
            summary.bundles += 1
            if len(summary.examples) < 2:
                shown = {k: v for k, v in json.loads(body).items() if not k.startswith(PREFIX)}
                summary.examples.append({**shown, "guid": guid})
        if len(bundles) >= _BATCH:
            store.add_bundles(bundles)
            store.add_notes(notes)
            bundles, notes = [], []
    store.add_bundles(bundles)
    store.add_notes(notes)
    store.finish_plan()


def _fold(
    rows: list[tuple[int, dict[str, object]]], policy: ConflictPolicy
) -> tuple[dict[str, object], dict[int, list[str]], list[str]]:
    """Merge one guid's rows: the bundle body, notes per row, and conflict descriptions."""
    merged: dict[str, object] = {}
    source: dict[str, int] = {}
    row_notes: dict[int, list[str]] = {}
    conflicts: list[str] = []
    for row, changes in rows:
        for name, value in changes.items():
            if name not in merged:
                merged[name], source[name] = value, row
                continue
            if _same(merged[name], value):
                continue
            earlier = source[name]
            conflicts.append(f"{name} in rows {earlier} and {row}")
            if policy == "last":
                row_notes.setdefault(earlier, []).append(f"{name} overridden by row {row}")
                merged[name], source[name] = value, row
            elif policy == "first":
                row_notes.setdefault(row, []).append(f"{name} ignored: row {earlier} set it first")
    return merged, row_notes, conflicts


def _same(a: object, b: object) -> bool:
    """Equal as JSON values: ``True`` and ``1`` differ on the wire, so they differ here."""
    return type(a) is type(b) and a == b


def _batches(items: Iterable[_T], size: int) -> Iterator[list[_T]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch
