"""The phases a job's requests go through: read (back up and diff), write, verify.

The sender runs one phase at a time through the same pool, pacer and retry policy; a phase says
which bundles it takes from the store, which request each batch becomes, and what an answer
changes in the store. Each phase records its results as they arrive, and takes only bundles it
has not finished, so a resumed job never repeats a finished phase: a lead read once is never
read again, a lead written is never written again.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Collection, Sequence
from typing import Final, Literal, Protocol

import httpx

from bulkleads.bundle import RESUMABLE, Bundle, Mark, Read, State
from bulkleads.fields import FieldError, needs_words, same
from bulkleads.hubspot.http import Outcome, RecordMaker, Target
from bulkleads.jobstore.store import JobStore
from bulkleads.send.decide import Decision, decide

StopReason = Literal["auth", "daily", "signal"]
Result = tuple[Bundle, Outcome, Mark]
NOT_KEPT: Final = "HubSpot accepted the update but did not keep it"
_to_json: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class Phase(Protocol):
    """One kind of request over a job's bundles."""

    label: str  # what the progress display calls it

    def pending(self) -> int:
        """How many bundles this phase has left to do."""
        ...

    def take(self, after_row: int, limit: int) -> list[Bundle]:
        """The next bundles to do, in input order after ``after_row``."""
        ...

    def build(self, batch: Sequence[Bundle]) -> httpx.Request: ...

    def classify(
        self, response: httpx.Response, batch: Sequence[Bundle]
    ) -> tuple[Outcome, dict[str, Outcome]]: ...

    def begin(self, batch: Sequence[Bundle]) -> None:
        """Called before a batch's first request."""
        ...

    def record(self, results: list[Result]) -> None:
        """Store a batch's results (the sender's generic mark beside each outcome)."""
        ...

    def settle_unsent(self, reason: StopReason | None, detail: str | None) -> None:
        """The run stopped: give the bundles it did not finish the state the reason implies."""
        ...


class _Unsent:
    """Bundles not yet sent when a run stops become ``not_sent`` (token refused) or
    ``deferred`` (daily limit, a signal): running the command again takes them up. A write
    still in flight when the run gave up waiting (the grace ran out, a second Ctrl-C) may have
    reached HubSpot: it is ``unconfirmed``, never ``deferred``, and the next run reads it back."""

    _store: JobStore

    def settle_unsent(self, reason: StopReason | None, detail: str | None) -> None:
        cut = detail or "the run stopping"
        self._store.move(
            (State.INFLIGHT,),
            State.UNCONFIRMED,
            f"its request was cut off by {cut} before HubSpot answered; it may have been "
            "written: running the same command settles it (reads it back, or without a backup "
            "sends it again)",
        )
        if reason == "auth":
            self._store.move(RESUMABLE, State.NOT_SENT, f"not sent: {detail}")
        elif reason in ("daily", "signal"):
            self._store.move(RESUMABLE, State.DEFERRED, f"deferred: {detail}")


class _Reading:
    """What the read and verify phases share: batch reads, and nothing to mark before."""

    _target: Target

    def build(self, batch: Sequence[Bundle]) -> httpx.Request:
        return self._target.build_read(batch)

    def classify(
        self, response: httpx.Response, batch: Sequence[Bundle]
    ) -> tuple[Outcome, dict[str, Outcome]]:
        return self._target.classify_read(response, batch)

    def begin(self, batch: Sequence[Bundle]) -> None:
        """Reading changes nothing at HubSpot: nothing to mark."""


class _Writing:
    """What the write and clear phases share: batch updates."""

    _target: Target

    def build(self, batch: Sequence[Bundle]) -> httpx.Request:
        return self._target.build(batch)

    def classify(
        self, response: httpx.Response, batch: Sequence[Bundle]
    ) -> tuple[Outcome, dict[str, Outcome]]:
        return self._target.classify(response, batch)


class WritePhase(_Writing, _Unsent):
    """Send each bundle's body; ``read`` True takes only bundles whose current values are
    backed up (reading is on), None every bundle in ``states``."""

    label = "updating"

    def __init__(
        self,
        store: JobStore,
        target: Target,
        states: tuple[str, ...] = RESUMABLE,
        *,
        read: bool | None = None,
    ) -> None:
        self._store = store
        self._target = target
        self._states = states
        self._read = read

    def pending(self) -> int:
        return self._store.count(self._states, read=self._read, action="update")

    def take(self, after_row: int, limit: int) -> list[Bundle]:
        return self._store.to_send(self._states, after_row, limit, read=self._read, action="update")

    def begin(self, batch: Sequence[Bundle]) -> None:
        self._store.mark(Mark(State.INFLIGHT, None, None, None, b.guid) for b in batch)

    def record(self, results: list[Result]) -> None:
        self._store.mark(mark for _, _, mark in results)


class ReadPhase(_Reading, _Unsent):
    """Read the current values of the fields each bundle changes, back them up, and decide
    (:func:`bulkleads.send.decide.decide`) what is still to send."""

    label = "reading"

    def __init__(
        self,
        store: JobStore,
        target: Target,
        states: tuple[str, ...] = RESUMABLE,
        *,
        only_empty: Collection[str] = (),
        force: bool = False,
        is_empty: Callable[[str, object], bool] | None = None,
        only: frozenset[str] | None = None,
        create: bool = False,
        required: tuple[tuple[str, ...], ...] = (),
        moves_back: Callable[[str, object, object], bool] | None = None,
        check_row: Callable[[dict[str, object], dict[str, object]], dict[str, object]]
        | None = None,
    ) -> None:
        """``only``: read these bundles and no other (a dry run's sample); ``create``: a key
        no record has is to be created (``--create``), not ``not_found``, when its bundle
        holds every ``required`` property (else it fails before any request creates it);
        ``moves_back``: the rules' test of a value HubSpot takes only after a clear."""
        self._create = create
        self._moves_back = moves_back
        self._check_row = check_row
        self._required = required
        self._store = store
        self._target = target
        self._states = states
        self._only_empty = only_empty
        self._force = force
        self._is_empty = is_empty
        self._only = only

    def pending(self) -> int:
        count = self._store.count(self._states, read=False)
        return count if self._only is None else min(count, len(self._only))

    def take(self, after_row: int, limit: int) -> list[Bundle]:
        return self._store.to_send(self._states, after_row, limit, read=False, among=self._only)

    def record(self, results: list[Result]) -> None:
        reads: list[Read] = []
        failures: list[Mark] = []
        creating: list[tuple[str, str | None, str | None, str]] = []
        backward: list[tuple[list[str], str]] = []
        invalid: list[tuple[str, str]] = []
        for bundle, outcome, (state, status, attempts, reason, guid) in results:
            if outcome.kind == "ok" and outcome.values is not None:
                try:
                    bundle = self._checked(bundle, outcome.values)
                except FieldError as error:
                    invalid.append((f"{error} (the record's own pipeline, as read)", guid))
                    continue
                decision = decide(
                    bundle.body,
                    outcome.values,
                    only_empty=self._only_empty,
                    expect=bundle.expect,
                    force=self._force,
                    is_empty=self._is_empty,
                )
                after = State.SKIPPED if decision.skip else State.PENDING
                back = self._back(decision.before, decision.body)
                note = "; ".join(filter(None, [decision.note, _back_note(decision, back)]))
                reads.append(
                    Read(
                        _to_json(decision.before),
                        _to_json(decision.body),
                        after,
                        decision.skip,
                        note or None,
                        outcome.record_id,
                        guid,
                    )
                )
                if back and not decision.skip:
                    backward.append((back, guid))
            elif outcome.kind == "ok" and self._create and (lacking := self._lacking(bundle)):
                needs = needs_words(self._required)
                reason = (
                    f"HubSpot has no record with this key, and creating one needs {needs}: "
                    f"the row has no {', '.join(lacking)}"
                )
                failures.append(Mark(State.FAILED, status, None, reason, guid))
            elif outcome.kind == "ok" and self._create:
                nothing = _to_json(dict.fromkeys(bundle.body))  # a new record holds nothing
                creating.append(("create", None, nothing, guid))
                failures.append(Mark(State.PENDING, status, None, None, guid))
            elif outcome.kind == "ok":
                failures.append(
                    Mark(State.NOT_FOUND, status, None, "HubSpot has no record with this key", guid)
                )
            else:
                reason = f"reading current values: {reason}"
                failures.append(Mark(state, status, attempts, reason, guid))
        if reads:
            self._store.record_reads(reads)
        if invalid:
            self._store.invalidate(invalid)
        if backward:
            self._store.clear_first(backward)
        if creating:
            self._store.set_action(creating)
        if failures:
            self._store.mark(failures)

    def _checked(self, bundle: Bundle, current: dict[str, object]) -> Bundle:
        """The bundle as the record's current values let it go (a stage taken in the
        record's own pipeline); raises FieldError when they refuse it."""
        if self._check_row is None:
            return bundle
        body = self._check_row(bundle.body, current)
        return bundle if body == bundle.body else dataclasses.replace(bundle, body=body)

    def _lacking(self, bundle: Bundle) -> list[str]:
        """What the bundle lacks of the first set it would need (none when a set is whole)."""
        missing = [
            [n for n in names if bundle.body.get(n) in (None, "")] for names in self._required
        ]
        return [] if not missing or not all(missing) else missing[0]

    def _back(self, before: dict[str, object], body: dict[str, object]) -> list[str]:
        """The properties ``body`` moves back from what the record holds (``before``)."""
        if self._moves_back is None:
            return []
        return [n for n, value in body.items() if self._moves_back(n, before.get(n), value)]


def _back_note(decision: Decision, names: list[str]) -> str | None:
    """What the report says of a move back: from what, to what, and how it was sent."""
    if not names:
        return None
    moves = ", ".join(f"{n} {decision.before[n]} to {decision.body[n]}" for n in names)
    return f"moves back ({moves}): cleared first, then set"


class ClearPhase(_Writing, _Unsent):
    """Clear what must be cleared before its write (a lifecycle stage moving back: HubSpot
    ignores a set to an earlier stage, answering 200); the write phase takes a bundle only
    once its clear is confirmed. Both steps are in the job file, so a run stopped between
    them clears again (harmless) and then writes."""

    label = "clearing"

    def __init__(self, store: JobStore, target: Target, states: tuple[str, ...]) -> None:
        self._store = store
        self._target = target
        self._states = states

    def pending(self) -> int:
        return self._store.count(self._states, read=True, action="clear")

    def take(self, after_row: int, limit: int) -> list[Bundle]:
        return self._store.to_clear(self._states, after_row, limit)

    def begin(self, batch: Sequence[Bundle]) -> None:
        """A clear changes nothing the job's own states track: the bundle stays pending."""

    def record(self, results: list[Result]) -> None:
        cleared = [bundle.guid for bundle, outcome, _ in results if outcome.kind == "ok"]
        failed = []
        for bundle, outcome, (state, status, attempts, reason, guid) in results:
            if outcome.kind == "ok":
                continue
            if state == State.UNCONFIRMED:  # no answer counted: ``retry`` clears again
                state, status = State.FAILED, None
            why = f"clearing {', '.join(bundle.body)} first (a move back): {reason}"
            failed.append(Mark(state, status, attempts, why, guid))
        if cleared:
            self._store.cleared(cleared)
        if failed:
            self._store.mark(failed, keep_status=False)


class CreatePhase(_Unsent):
    """``--create``: make the records reading found no record for, by upsert on the match
    property; each keeps the id HubSpot gave it (the report's record_id, undo's archive)."""

    label = "creating"
    _action = "create"

    def __init__(self, store: JobStore, target: RecordMaker, states: tuple[str, ...]) -> None:
        self._store = store
        self._target = target
        self._states = states

    def pending(self) -> int:
        return self._store.count(self._states, read=True, action=self._action)

    def take(self, after_row: int, limit: int) -> list[Bundle]:
        return self._store.to_send(self._states, after_row, limit, read=True, action=self._action)

    def build(self, batch: Sequence[Bundle]) -> httpx.Request:
        return self._target.build_create(batch)

    def classify(
        self, response: httpx.Response, batch: Sequence[Bundle]
    ) -> tuple[Outcome, dict[str, Outcome]]:
        return self._target.classify_create(response, batch)

    def begin(self, batch: Sequence[Bundle]) -> None:
        self._store.mark(Mark(State.INFLIGHT, None, None, None, b.guid) for b in batch)

    def record(self, results: list[Result]) -> None:
        self._store.mark(mark for _, _, mark in results)
        made = [
            ("created", outcome.record_id, None, bundle.guid)
            for bundle, outcome, _ in results
            if outcome.kind == "ok" and outcome.record_id is not None
        ]
        if made:
            self._store.set_action(made)


class ArchivePhase(CreatePhase):
    """Undo of ``--create``: archive the records the job made (HubSpot keeps them 90 days)."""

    label = "archiving"
    _action = "archive"

    def build(self, batch: Sequence[Bundle]) -> httpx.Request:
        return self._target.build_archive(batch)

    def classify(
        self, response: httpx.Response, batch: Sequence[Bundle]
    ) -> tuple[Outcome, dict[str, Outcome]]:
        return self._target.classify_archive(response, batch)

    def record(self, results: list[Result]) -> None:
        self._store.mark(mark for _, _, mark in results)


def _lost(sent: dict[str, object], values: dict[str, object]) -> list[str]:
    """The fields whose value read back is not the one sent, each as ``name is X, sent Y``."""
    return [
        f"{name} is {json.dumps(values.get(name), ensure_ascii=False)}, "
        f"sent {json.dumps(value, ensure_ascii=False)}"
        for name, value in sent.items()
        if not same(values.get(name), value)
    ]


class SettlePhase(_Reading):
    """Read back the records HubSpot answered 2xx for without saying it wrote them: one that
    holds what was sent is updated; one that does not failed (no answer counted: ``retry``
    sends it again); one that cannot be read stays unconfirmed."""

    label = "confirming"

    def __init__(self, store: JobStore, target: Target) -> None:
        self._store = store
        self._target = target

    def pending(self) -> int:
        return self._store.count((State.UNCONFIRMED,))

    def take(self, after_row: int, limit: int) -> list[Bundle]:
        return self._store.to_send((State.UNCONFIRMED,), after_row, limit)

    def record(self, results: list[Result]) -> None:
        kept: list[Mark] = []
        lost_writes: list[Mark] = []
        found: list[tuple[str, str | None, str | None, str]] = []
        for bundle, outcome, _mark in results:
            if outcome.kind != "ok" or outcome.values is None:
                continue
            lost = _lost(bundle.body, outcome.values)
            if not lost:
                kept.append(Mark(State.DONE, None, None, None, bundle.guid))
                if outcome.record_id is not None:  # a record this job was creating: made
                    found.append(("created", outcome.record_id, None, bundle.guid))
                continue
            reason = (
                "HubSpot's answer did not confirm the update, and read back the record does "
                f"not hold it ({'; '.join(lost)}); bulkleads retry sends it again"
            )
            lost_writes.append(Mark(State.FAILED, None, None, reason, bundle.guid))
        if kept:
            self._store.mark(kept)
        if found:
            self._store.settle_created(found)
        if lost_writes:
            self._store.mark(lost_writes, keep_status=False)

    def settle_unsent(self, reason: StopReason | None, detail: str | None) -> None:
        """Records not read back stay unconfirmed."""


class VerifyPhase(_Reading):
    """Read every updated lead back; one whose values did not stick fails (HubSpot's silent
    no-op). A lead that cannot be read back stays updated and unverified."""

    label = "verifying"

    def __init__(self, store: JobStore, target: Target) -> None:
        self._store = store
        self._target = target

    def pending(self) -> int:
        return self._store.count_unverified()

    def take(self, after_row: int, limit: int) -> list[Bundle]:
        return self._store.to_verify(after_row, limit)

    def record(self, results: list[Result]) -> None:
        checked: list[tuple[int, str | None, str]] = []
        for bundle, outcome, _mark in results:
            if outcome.kind != "ok" or outcome.values is None:
                continue
            lost = _lost(bundle.body, outcome.values)
            checked.append(
                (0, f"{NOT_KEPT} ({'; '.join(lost)})", bundle.guid)
                if lost
                else (1, None, bundle.guid)
            )
        if checked:
            self._store.record_verified(checked)

    def settle_unsent(self, reason: StopReason | None, detail: str | None) -> None:
        """Updated leads left unverified stay updated."""
