"""A record's merged update as it moves through the job (a bundle), and the words of its
states: the values every stage passes along, so that the API layer needs no job store."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final, NamedTuple


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


class Mark(NamedTuple):
    """An answer's mark on one bundle (or link), kept the moment it arrives."""

    state: str
    status: int | None  # the HTTP status; None keeps the one stored (or no answer came)
    attempts: int | None  # None keeps the count stored
    reason: str | None
    key: str  # the bundle's key (a link's: see jobstore.links.link_key)


class Read(NamedTuple):
    """What reading one record found and decided: its backup, what is left to send, and why."""

    before: str | None  # JSON: the record's values of the planned fields (the backup)
    body: str  # JSON: the fields still to send
    state: str
    reason: str | None
    note: str | None
    record_id: str | None  # the id the read found (None keeps the one stored)
    key: str


@dataclass(frozen=True, slots=True)
class Bundle:
    """One lead's merged update, as the sender takes it from the store."""

    guid: str
    body: dict[str, object]
    first_row: int
    attempts: int
    expect: dict[str, object] | None = None  # undo: what the lead must still hold
    record_id: str | None = None  # CRM --match: the record's id, found by reading its key
