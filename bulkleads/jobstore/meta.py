"""A job's metadata as one typed value: what the job was planned from and for, and what its
runs learned. The job file keeps it as a key-value table (``meta``, JSON values); this module
is the only one that knows the table's keys. Older job files lack later keys, which read as
their defaults; a value of the wrong type (a hand-edited or damaged file) reads as the default
too, never as a crash.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Final, Protocol


class Table(Protocol):
    """Where a job keeps its metadata: a job store (which imports this module)."""

    def meta(self) -> dict[str, object]: ...

    def set_meta(self, values: dict[str, object]) -> None: ...


# The API's own saved options (:meth:`bulkleads.hubspot.Api.to_meta`), kept flat in the table.
API_KEYS: Final = (
    "auth",
    "api",
    "object",
    "batch_size",
    "id_property",
    "date_fields",
    "api_version",
    "create",
    "custom",  # a custom object's schema (type id, names, label, required properties)
    "linked",  # the schemas of the custom objects its links go to
)
WRITTEN: Final = "report_written"  # the fingerprint of the report the job wrote last


@dataclass(frozen=True)
class JobMeta:
    """Every key of a job's metadata, typed."""

    job: str = ""
    input: str = "-"  # as given (a path, or - for stdin; "undo of JOB" for an undo)
    input_path: str | None = None  # the input resolved, to find its jobs again
    input_dialect: Mapping[str, object] | None = None  # format, encoding, delimiter, sheet
    content_hash: str | None = None  # the input's bytes, to know it again
    created: str | None = None  # when the job was planned (ISO 8601)
    report: str | None = None  # the report's path, resolved
    report_dialect: Mapping[str, object] | None = None
    report_written: Mapping[str, object] | None = None
    command: str = ""  # the command line that resumes the job (never the token)
    key_column: str = "guid"  # the report's and diff's header for the key
    base_url: str | None = None
    api_options: Mapping[str, object] = field(default_factory=dict)
    backup: bool = False
    only_empty: tuple[str, ...] = ()
    verify: bool = False
    rate: float | None = None  # the latest run's pace (None: the API's default)
    rate_window: float | None = None
    plan: Mapping[str, object] | None = None  # the plan's counts
    associate_by: Mapping[str, str] = field(default_factory=dict)
    association_types: Mapping[str, object] = field(default_factory=dict)
    properties: Mapping[str, str] | None = None  # the definitions planned against (None: defaults)
    runs: tuple[Mapping[str, object], ...] = ()  # each sending run's limit and pace reached
    undo_of: str | None = None
    # How the job was run, so that retry, undo and report need no flag again (never the token)
    profile: str | None = None  # --profile NAME
    token_env: str | None = None  # the variable that held the token
    token_file: str | None = None  # the file that held it, resolved

    @classmethod
    def of(cls, table: Mapping[str, object]) -> JobMeta:
        """The metadata of a job file's table (keys to decoded JSON values)."""
        values: dict[str, object] = {}
        for f in fields(cls):
            if f.name == "api_options":
                values[f.name] = {k: table[k] for k in API_KEYS if k in table}
            elif f.name in table and (value := _typed(f.name, table[f.name])) is not None:
                values[f.name] = value
        return cls(**values)  # type: ignore[arg-type]

    @classmethod
    def read(cls, store: Table) -> JobMeta:
        return cls.of(store.meta())


_TEXT: Final = frozenset(
    {"job", "input", "input_path", "created", "report", "command", "key_column", "base_url"}
    | {"content_hash"}
)
_MAPS: Final = frozenset(
    {"report_dialect", "report_written", "plan", "associate_by", "association_types", "properties"}
    | {"input_dialect"}
)


def _typed(name: str, value: object) -> object:
    """``value`` as the field's type, or None (the default) when it is not of it."""
    if name in _TEXT or name in ("undo_of", "profile", "token_env", "token_file"):
        return value if isinstance(value, str) else None
    if name in _MAPS:
        return value if isinstance(value, dict) else None
    if name in ("backup", "verify"):
        return bool(value)
    if name in ("rate", "rate_window"):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return float(value) if ok else None  # type: ignore[arg-type]
    if name == "only_empty":
        return tuple(str(v) for v in value) if isinstance(value, list) else None
    if name == "runs":
        return tuple(r for r in value if isinstance(r, dict)) if isinstance(value, list) else None
    return None


_KEYS: Final = frozenset({f.name for f in fields(JobMeta)} - {"api_options"}) | set(API_KEYS)


def write(store: Table, values: Mapping[str, object]) -> None:
    """Keep ``values`` (table keys: :class:`JobMeta`'s fields and the API's saved options) in
    the job file; a key no field reads is a bug, refused here."""
    unknown = set(values) - _KEYS
    if unknown:
        raise ValueError(f"no job metadata is called {sorted(unknown)}")
    store.set_meta(dict(values))
