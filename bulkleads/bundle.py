"""A record's merged update as it moves through the job (a bundle), and the words of its
states: the values every stage passes along, so that the API layer needs no job store."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class State(StrEnum):
    """A bundle's state in the job file (its SQL value is the word). ``pending``,
    ``inflight``, ``deferred`` and ``not_sent`` are all "not confirmed": running the same
    command again sends them. ``done`` is confirmed and never sent again."""

    PENDING = "pending"
    INFLIGHT = "inflight"
    DONE = "done"
    FAILED = "failed"
    DEFERRED = "deferred"
    NOT_SENT = "not_sent"
    SKIPPED = "skipped"
    INVALID = "invalid"
    UNCONFIRMED = "unconfirmed"  # HubSpot answered 2xx without saying the record was written
    NOT_FOUND = "not_found"  # reading found no record with the key (CRM: id or --match value)


RESUMABLE: Final = (State.PENDING, State.INFLIGHT, State.DEFERRED, State.NOT_SENT)
Mark = tuple[str, int | None, int | None, str | None, str]
Read = tuple[str | None, str, str, str | None, str | None, str | None, str]


@dataclass(frozen=True, slots=True)
class Bundle:
    """One lead's merged update, as the sender takes it from the store."""

    guid: str
    body: dict[str, object]
    first_row: int
    attempts: int
    expect: dict[str, object] | None = None  # undo: what the lead must still hold
    record_id: str | None = None  # CRM --match: the record's id, found by reading its key
