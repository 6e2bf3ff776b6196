"""What planning is asked (the options that are part of a job's identity) and what it found
(the summary printed before sending and kept with the job)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ConflictPolicy = Literal["last", "first", "error"]


@dataclass(frozen=True)
class PlanOptions:
    """The options that change what is sent; they are part of a job's identity."""

    guid_column: str | None = None
    renames: tuple[tuple[str, str], ...] = ()
    ignore: tuple[str, ...] = ()
    clear_token: str | None = None
    timezone: str = "UTC"
    on_conflict: ConflictPolicy = "last"
    allow_fields: tuple[str, ...] = ()
    # Which non-standard fields may be sent. Not part of the identity: they decide whether a
    # plan may run at all, not what it sends.
    custom_fields: tuple[str, ...] = ()
    allow_custom_fields: bool = False
    date_formats: tuple[str, ...] = ()  # strptime formats of local dates (--date-format)
    associate_by: tuple[tuple[str, str], ...] = ()  # (object, property) of link columns
    association_labels: tuple[tuple[str, str], ...] = ()  # (object, label) of link columns

    @property
    def link_keys(self) -> dict[str, str]:
        return dict(self.associate_by)

    def identity(self) -> dict[str, object]:
        links: dict[str, object] = (
            {"associate_by": sorted(self.associate_by)} if self.associate_by else {}
        )
        if self.association_labels:
            links["association_labels"] = sorted(self.association_labels)
        return links | {
            "guid_column": self.guid_column,
            "renames": sorted(self.renames),
            "ignore": sorted(self.ignore),
            "clear_token": self.clear_token,
            "timezone": self.timezone,
            "on_conflict": self.on_conflict,
            "allow_fields": sorted(self.allow_fields),
            "date_formats": list(self.date_formats),
        }


@dataclass
class PlanSummary:
    """What preflight found; printed before sending and kept in the job's metadata."""

    records: int = 0
    invalid: int = 0
    bundles: int = 0
    skipped: int = 0
    links: int = 0  # associations to make (associate:OBJECT columns)
    conflicts: int = 0
    conflicted_guids: int = 0
    custom_fields: list[str] = field(default_factory=list)  # non-standard fields sent
    encoding: str | None = None
    ignored_columns: list[str] = field(default_factory=list)
    examples: list[dict[str, object]] = field(default_factory=list)
    # (row, line, guid, reason) of the first invalid rows, for the console
    invalid_examples: list[tuple[int, int, str | None, str]] = field(default_factory=list)
