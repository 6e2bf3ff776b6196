"""The phases that make a job's links, after its records are read, written and created: find
the records to link to (a batch read by a unique property, or a search by domain), read the
links each record has (one already there is skipped, not sent), link, and, for an undo, unlink.

Each phase is one object pair's, sends to its own endpoint (:attr:`target`), and the search
has a pace of its own (:attr:`pace`); everything else is the sender's, as for records: retries,
the shared pacer, the timeline, and a stop that leaves what is unsent ``deferred``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import httpx

from bulkleads.bundle import RESUMABLE, Bundle, Mark, State
from bulkleads.hubspot.associations import (
    SEARCH_PACE,
    AssociationTarget,
    AssociationType,
    SearchTarget,
)
from bulkleads.hubspot.crm_batch import CrmV3Target
from bulkleads.hubspot.crm_fields import singular
from bulkleads.hubspot.http import Endpoint, Outcome
from bulkleads.hubspot.limits import Limit
from bulkleads.jobstore.links import LinkStore
from bulkleads.send.phases import Result, StopReason


@runtime_checkable
class OwnEndpoint(Protocol):
    """A phase that sends to an endpoint of its own, perhaps at a pace of its own."""

    target: Endpoint
    pace: Limit | None


class LinkWork:
    """What every phase of a job's links shares."""

    unit: str | None = "link"  # what its progress counts (None: the job's records)

    def __init__(self, links: LinkStore, to_object: str, target: Endpoint) -> None:
        self._links = links
        self._object = to_object
        self.target = target

    def begin(self, batch: Sequence[Bundle]) -> None:
        """Finding and reading change nothing at HubSpot: nothing to mark first."""

    def settle_unsent(self, reason: StopReason | None, detail: str | None) -> None:
        """Links not yet made when a run stops: sent by the next (linking is idempotent)."""
        self._links.move((State.INFLIGHT,), State.UNCONFIRMED, f"cut off by {detail}")
        if reason == "auth":
            self._links.move(RESUMABLE, State.NOT_SENT, f"not sent: {detail}")
        elif reason in ("daily", "signal"):
            self._links.move(RESUMABLE, State.DEFERRED, f"deferred: {detail}")


class FindPhase(LinkWork):
    """The id of each record a link names by a key: by a batch read of a unique property
    (``target`` a :class:`CrmV3Target` by that property), or by search (a domain)."""

    label = "finding"
    unit = "key"

    def __init__(
        self, links: LinkStore, to_object: str, target: CrmV3Target | SearchTarget, prop: str
    ) -> None:
        super().__init__(links, to_object, target)
        self.target: CrmV3Target | SearchTarget = target
        self._prop = prop
        self.pace: Limit | None = SEARCH_PACE if isinstance(target, SearchTarget) else None

    def pending(self) -> int:
        return self._links.count_to_find(self._object)

    def take(self, after_row: int, limit: int) -> list[Bundle]:
        return self._links.to_find(self._object, after_row, limit)

    def build(self, batch: Sequence[Bundle]) -> httpx.Request:
        if isinstance(self.target, SearchTarget):
            return self.target.build(batch)
        return self.target.build_read(batch)

    def classify(
        self, response: httpx.Response, batch: Sequence[Bundle]
    ) -> tuple[Outcome, dict[str, Outcome]]:
        if isinstance(self.target, SearchTarget):
            return self.target.classify(response, batch)
        outcome, found = self.target.classify_read(response, batch)
        if outcome.kind == "ok":  # a key the read does not return: no such record
            found = {b.guid: found.get(b.guid, Outcome("ok", outcome.status)) for b in batch}
        return outcome, found

    def record(self, results: list[Result]) -> None:
        noun = singular(self._object)
        items: list[tuple[str | None, str, str | None, str]] = []
        for bundle, outcome, (state, _status, _attempts, reason, value) in results:
            if outcome.kind == "ok" and outcome.record_id is not None:
                items.append((outcome.record_id, State.PENDING, None, value))
            elif outcome.kind == "ok":
                missing = f"no {noun} has {self._prop} {bundle.guid}"
                items.append((None, State.NOT_FOUND, missing, value))
            else:
                items.append((None, state, f"finding the {noun}: {reason}", value))
        self._links.found(self._object, items)


class CheckPhase(LinkWork):
    """Read the links each record has to ``to_object`` (1,000 records a request): a link
    that is there already is ``skipped`` and counted, never sent."""

    label = "reading links"
    unit = None
    pace = None

    def __init__(
        self,
        links: LinkStore,
        to_object: str,
        target: AssociationTarget,
        noun: str,
        kind: AssociationType | None,
    ) -> None:
        """``kind``: the labeled type links are made with (a pair there without it still
        takes it); None: any link there counts."""
        super().__init__(links, to_object, target)
        self.target: AssociationTarget = target
        self._noun = noun
        self._type_id = kind.type_id if kind else None

    def pending(self) -> int:
        """Asked when the records' phases are over: each link first takes its record's id
        (read, or made by --create), or fails when its record has none."""
        self._links.settle_sources(self._noun)
        return self._links.count_to_check(self._object)

    def take(self, after_row: int, limit: int) -> list[Bundle]:
        return self._links.to_check(self._object, after_row, limit)

    def build(self, batch: Sequence[Bundle]) -> httpx.Request:
        return self.target.build_read(batch)

    def classify(
        self, response: httpx.Response, batch: Sequence[Bundle]
    ) -> tuple[Outcome, dict[str, Outcome]]:
        return self.target.classify_read(response, batch)

    def record(self, results: list[Result]) -> None:
        existing: dict[str, dict[str, list[int]]] = {}
        failed: list[tuple[str, str | None, str]] = []
        for bundle, outcome, (state, _status, _attempts, reason, _key) in results:
            if outcome.kind == "ok" and outcome.values is not None:
                there = outcome.values.get("to")
                existing[bundle.guid] = there if isinstance(there, dict) else {}
            else:
                failed.append((state, f"reading its links: {reason}", bundle.guid))
        self._links.checked(self._object, existing, self._type_id)
        if failed:
            self._links.fail_sources(self._object, failed)


class LinkPhase(LinkWork):
    """Link each pair with HubSpot's default type (100 a request); ``unlink``: remove the
    links an undone job made (``batch/archive``)."""

    pace = None

    def __init__(
        self,
        links: LinkStore,
        to_object: str,
        target: AssociationTarget,
        states: tuple[str, ...],
        *,
        unlink: bool = False,
        existed: bool = False,
    ) -> None:
        """``unlink`` with ``existed``: remove only the labeled type from pairs that were
        linked before the job (``target`` made with that type), else whole pairs."""
        super().__init__(links, to_object, target)
        self.target: AssociationTarget = target
        self._states = (*states, State.UNCONFIRMED)  # linking again is harmless
        self._unlink = unlink
        self._existed = existed
        self.label = "unlinking" if unlink else "linking"

    def pending(self) -> int:
        return self._links.count_to_link(
            self._object, self._states, unlink=self._unlink, existed=self._existed
        )

    def take(self, after_row: int, limit: int) -> list[Bundle]:
        return self._links.to_link(
            self._object, self._states, after_row, limit, unlink=self._unlink, existed=self._existed
        )

    def build(self, batch: Sequence[Bundle]) -> httpx.Request:
        if self._unlink:
            return self.target.build_unlink(batch)
        return self.target.build_link(batch)

    def classify(
        self, response: httpx.Response, batch: Sequence[Bundle]
    ) -> tuple[Outcome, dict[str, Outcome]]:
        if self._unlink:
            return self.target.classify_unlink(response, batch)
        return self.target.classify_link(response, batch)

    def begin(self, batch: Sequence[Bundle]) -> None:
        self._links.mark(Mark(State.INFLIGHT, None, None, None, b.guid) for b in batch)

    def record(self, results: list[Result]) -> None:
        self._links.mark(mark for _, _, mark in results)
