"""What each input column feeds, and the checks that stop a job on its header or its field
names before any row is read: the key column, typos of standard fields, custom fields nobody
named, properties the portal lacks, columns that cannot be edited.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from bulkleads.errors import InputError, UsageError
from bulkleads.fields import FieldRules, suggestion
from bulkleads.hubspot.crm_fields import CRM_DEFAULT_PROPERTIES, singular

if TYPE_CHECKING:
    from bulkleads.plan.options import PlanOptions, PlanSummary

KEY: Final = "\x00key"  # the key column, whatever the API calls it


# What a failed rows' file adds at the end of the input's header (report/failed.py).
FAILED_COLUMNS: Final = ("error", "outcome")


class Columns:
    """Maps input keys (CSV headers or JSONL keys) to field names, with a cache.

    The key column (``guid`` for Leads v1, ``id`` for CRM v3) maps to :data:`KEY`.
    """

    def __init__(self, options: PlanOptions, key: str) -> None:
        self._renames = {
            _key(src): KEY if _key(dst) == key else dst.strip() for src, dst in options.renames
        }
        self._ignore = {_key(name) for name in options.ignore}
        self._key_column = _key(options.guid_column) if options.guid_column else None
        self._key = key
        self._cache: dict[str, str | None] = {}

    def take_header(self, header: list[str]) -> None:
        """A header that ends with ``error`` and ``outcome`` is a failed rows' file of ours
        (:mod:`bulkleads.report.failed`) being sent again: those two are never fields."""
        if [_key(name) for name in header[-2:]] == list(FAILED_COLUMNS):
            self._ignore |= set(FAILED_COLUMNS)
            self._cache.clear()

    def field_for(self, name: str) -> str | None:
        """The field a column feeds (:data:`KEY` for the key column), or None if ignored."""
        try:
            return self._cache[name]
        except KeyError:
            pass
        k = _key(name)
        target: str | None
        if not k or k in self._ignore:
            target = None
        elif self._key_column is not None:
            target = KEY if k == self._key_column else self._renames.get(k, name.strip())
            target = None if target == KEY and k != self._key_column else target
        else:
            target = self._renames.get(k, KEY if k == self._key else name.strip())
        self._cache[name] = target
        return target


def _key(name: str) -> str:
    return name.strip().casefold()


def _check_portal_names(names: list[str], rules: FieldRules) -> None:
    missing = [
        f"{name!r}" + (f" (did you mean {meant}?)" if meant else "")
        for name in names
        if name not in rules.known
        for meant in [suggestion(name, rules.known)]
    ]
    if missing:
        unknown = {name for name in names if name not in rules.known}
        other = [
            crm_object
            for crm_object, known in CRM_DEFAULT_PROPERTIES.items()
            if unknown <= known and singular(crm_object) != rules.noun
        ]
        hint = f"; they are properties of {other[0]}: pass --object {other[0]}" if other else ""
        raise UsageError(
            f"not a property of the portal's {rules.noun} records: "
            + ", ".join(missing)
            + hint
            + '; rename the column (or --map "COLUMN=property"), drop it with --ignore-column '
            "NAME, or create the property in HubSpot first"
        )


def check_names(names: list[str], rules: FieldRules, options: PlanOptions) -> None:
    """Stop when a field is a typo of a standard one, or a custom field nobody named: HubSpot
    would store either as a custom property and leave the field meant unchanged. Against the
    portal's own property list (CRM v3 with a token), a name it lacks always stops the run."""
    if rules.from_portal:
        _check_portal_names(names, rules)
        return
    named = set(options.custom_fields)
    typos: list[str] = []
    custom: list[str] = []
    for name in names:
        if name in rules.known or name in named:
            continue
        if (meant := suggestion(name, rules.known)) is not None:
            typos.append(f"{name!r} (did you mean {meant}?)")
        elif not options.allow_custom_fields:
            custom.append(name)
    if typos:
        raise UsageError(
            f"field(s) that are not standard {rules.noun} fields but look like one: "
            + ", ".join(typos)
            + '; rename the column (or --map "COLUMN=field"); if it really is a custom '
            "field of your portal, name it with --custom-field NAME"
        )
    if custom:
        raise UsageError(
            f"field(s) that are not standard {rules.noun} fields: "
            + ", ".join(custom)
            + "; if they are custom fields of your portal, send them with --custom-field NAME "
            "(repeatable) or --allow-custom-fields; otherwise drop them with --ignore-column NAME"
        )


def check_header(
    header: list[str],
    columns: Columns,
    allowed: frozenset[str],
    summary: PlanSummary,
    rules: FieldRules,
) -> None:
    """Stop before anything is read past the header when the columns cannot make a job."""
    targets = [columns.field_for(name) for name in header]
    if KEY not in targets:
        crm_key = rules.key == "guid" and {"id", "hs_object_id"} & {h.lower() for h in header}
        hint = (
            "; an id column holds CRM record ids: add --api crm-v3 --object contacts (or "
            "companies, deals, leads)"
            if crm_key
            else ""
        )
        raise UsageError(
            f"no {rules.key} column: the header has "
            + ", ".join(repr(h) for h in header)
            + f'; name it with --guid-column NAME or --map "NAME={rules.key}"'
            + hint
        )
    refused = [t for t in targets if t in rules.not_editable and t not in allowed]
    if refused:
        raise InputError(
            "column(s) " + ", ".join(refused) + " cannot be edited through the API; remove them "
            "with --ignore-column NAME (or --allow-field NAME if your portal accepts them)",
            line=1,
        )
    if rules.required and not any(all(n in targets for n in s) for s in rules.required):
        lacking = [n for n in rules.required[0] if n not in targets]
        raise UsageError(
            f"--create: HubSpot needs {rules.required_words()} to create a "
            f"{rules.noun}, and the input has no {', '.join(lacking)} column; add "
            f'{"it" if len(lacking) == 1 else "them"} (or --map "COLUMN=property")'
        )
    seen: dict[str, str] = {}
    for name, target in zip(header, targets, strict=True):
        if target is None:
            summary.ignored_columns.append(name)
        elif target in seen:
            shown = rules.key if target == KEY else target
            raise UsageError(f"columns {seen[target]!r} and {name!r} both feed field {shown!r}")
        else:
            seen[target] = name
