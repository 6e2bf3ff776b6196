"""A run's phases (read, write, verify, links) through one pacer, one transport and one
timeline, and the signals that stop them."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import httpx

from bulkleads.bundle import State
from bulkleads.fields import plural
from bulkleads.hubspot.associations import AssociationType, Linker
from bulkleads.hubspot.http import RecordMaker, Target
from bulkleads.hubspot.limits import Limit
from bulkleads.jobstore import meta as job_meta
from bulkleads.jobstore.meta import JobMeta
from bulkleads.jobstore.requests import Timeline
from bulkleads.jobstore.store import JobStore
from bulkleads.send.interrupts import Interrupts
from bulkleads.send.link_phases import CheckPhase, FindPhase, LinkPhase, LinkWork, OwnEndpoint
from bulkleads.send.options import Say, Sending
from bulkleads.send.pacing import Pacer
from bulkleads.send.phases import (
    ArchivePhase,
    ClearPhase,
    CreatePhase,
    Phase,
    ReadPhase,
    SettlePhase,
    VerifyPhase,
    WritePhase,
)
from bulkleads.send.pool import Sender, SendStats


def phases_for(
    store: JobStore, run: Sending, states: tuple[str, ...], target: Target
) -> list[Phase]:
    """Read (back up and diff) unless --no-backup, write, then verify when asked."""
    backup = run.reading.backup
    phases: list[Phase] = (
        [read_phase(store, run, states, target), ClearPhase(store, target, states)]
        if backup
        else []
    )
    # Without reading there is no settling: an unconfirmed write is sent again (idempotent).
    writes = states if backup else (*states, State.UNCONFIRMED)
    phases.append(WritePhase(store, target, writes, read=True if backup else None))
    if isinstance(target, RecordMaker):  # records to create (--create), or to archive (undo)
        phases += [CreatePhase(store, target, states), ArchivePhase(store, target, states)]
    if backup:  # what HubSpot's answer did not confirm, settled by reading it
        phases.append(SettlePhase(store, target))
    if run.reading.verify:
        phases.append(VerifyPhase(store, target))
    return phases + link_phases(store, run, states)


def link_phases(store: JobStore, run: Sending, states: tuple[str, ...]) -> list[Phase]:
    """For each object the job links to: find the records (by key), read the links there
    are, link; an undo's unlinks. None when the job makes no links."""
    links, api = store.links, run.api
    if not links.any() or run.token is None or not isinstance(api, Linker):
        return []  # only an API that links has links in its jobs: planning refuses them
    meta = JobMeta.read(store)
    by, types = meta.associate_by, meta.association_types
    phases: list[Phase] = []
    for to_object in links.objects():
        prop, kind = by.get(to_object), AssociationType.from_meta(types.get(to_object))
        ends = api.link_targets(run.base_url, run.token, to_object, prop, kind)
        if ends.finder is not None and prop is not None:
            phases.append(FindPhase(links, to_object, ends.finder, prop))
        phases += [
            CheckPhase(links, to_object, ends.reader, run.rules.noun, kind),
            LinkPhase(links, to_object, ends.writer, states),
            LinkPhase(links, to_object, ends.remover, states, unlink=True),
            LinkPhase(links, to_object, ends.writer, states, unlink=True, existed=True),
        ]
    return phases


def read_phase(
    store: JobStore,
    run: Sending,
    states: tuple[str, ...],
    target: Target,
    *,
    only: frozenset[str] | None = None,
) -> ReadPhase:
    return ReadPhase(
        store,
        target,
        states,
        only_empty=run.reading.only_empty,
        force=run.reading.force,
        is_empty=run.rules.is_empty,
        create=run.api.creates,
        required=run.rules.required,
        only=only,
        moves_back=run.rules.moves_back,
        check_row=run.rules.check_row,
    )


async def send_phases(
    store: JobStore,
    run: Sending,
    phases: list[Phase],
    target: Target,
    out: Say,
    interrupts: Interrupts | None = None,
) -> SendStats:
    """Each phase in turn through one pacer, so reads and writes together keep the pace
    (finding the records to link to goes beside them, at its own endpoint's pace); a phase
    that stops (token, daily limit, signal) ends the run. The portal's memory gives the
    pacer the requests of the runs just before this one, and takes this one's.
    ``interrupts``: the run's count of Ctrl-C, which its caller keeps on while it writes the
    report (a new one when None)."""
    loop = asyncio.get_running_loop()
    asked = run.pace.asked(run.api)
    pacer = Pacer(
        asked.requests,
        asked.window,
        made=[*run.made, *run.memory.made(loop.time())],
        explicit=run.pace.explicit,
        portal=run.memory.limit,
    )
    interrupts = interrupts or Interrupts(out, run.command)
    runner = _Runner(store, run, target, out, pacer, interrupts)
    # Finding the records to link to needs only the plan: it goes beside the records' own
    # phases (a search at its own pace leaves the portal's window to them); the rest of
    # the links need both, and follow.
    beside = [p for p in phases if isinstance(p, FindPhase)]
    links = [p for p in phases if isinstance(p, LinkWork) and p not in beside]
    records = [p for p in phases if p not in beside and p not in links]
    total = runner.total
    concurrency = run.pace.send.concurrency
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    started = loop.time()
    try:
        with interrupts.on_loop(total):
            async with httpx.AsyncHTTPTransport(limits=limits) as transport:
                await asyncio.gather(
                    runner.in_turn(records, transport),
                    runner.in_turn(beside, transport, shown=not records),
                )
                await runner.in_turn(links, transport)
    finally:
        run.memory.save(pacer, loop.time())
    total.elapsed = loop.time() - started  # phases beside each other overlap
    total.before = len(run.made)  # the portal counted them: so does the run's summary
    total.requests += total.before
    total.limit, total.utilization = pacer.limit(), pacer.utilization()
    if total.requests:
        _remember_run(store, runner.timeline.run, total)
    return total


class _Runner:
    """The phases of one run, each through a sender of its own, all sharing the pacer, the
    timeline and the count; a stop of one phase stops those beside it."""

    def __init__(
        self,
        store: JobStore,
        run: Sending,
        target: Target,
        out: Say,
        pacer: Pacer,
        interrupts: Interrupts,
    ) -> None:
        self._store, self._run, self._target, self._out = store, run, target, out
        self._pacer = pacer
        self._active = interrupts.active  # the senders a signal stops
        self.timeline = Timeline(store.requests, store.requests.next_run())
        self.total = SendStats()

    async def in_turn(
        self, phases: Sequence[Phase], transport: httpx.AsyncBaseTransport, *, shown: bool = True
    ) -> None:
        for phase in phases:
            await self._one(phase, transport, shown=shown)

    async def _one(self, phase: Phase, transport: httpx.AsyncBaseTransport, *, shown: bool) -> None:
        todo = phase.pending()
        if not todo or self.total.stop_reason is not None:
            return
        noun = (phase.unit if isinstance(phase, LinkWork) else None) or self._run.rules.noun
        progress = self._out.progress(todo, phase.label, plural(todo, noun)) if shown else None
        own = phase if isinstance(phase, OwnEndpoint) else None
        pace = self._run.pace
        sender = Sender(
            self._store,
            own.target if own else self._target,
            _own_pacer(own.pace) if own and own.pace else self._pacer,
            transport,
            pace.send,
            timeout=pace.timeout,
            on_result=progress.advance if progress else None,
            timeline=self.timeline,
        )
        self._active.append(sender)
        try:
            stats = await sender.run(phase=phase)
        finally:
            self._active.remove(sender)
            if progress:
                progress.close()
        self.total.add(stats)
        if stats.stop_reason is not None:  # a stop of one phase stops those beside it
            for other in self._active:
                other.stop(stats.stop_reason, stats.stop_detail or "")


def _remember_run(store: JobStore, run: int, total: SendStats) -> None:
    """What the page of `report --html` draws this run against: its limit and how much of
    it the run used."""
    assert total.limit is not None
    runs = JobMeta.read(store).runs
    entry = {
        "run": run,
        "limit": total.limit.requests,
        "window": total.limit.window,
        "utilization": total.utilization,
    }
    job_meta.write(store, {"runs": [*runs, entry]})


def _own_pacer(pace: Limit) -> Pacer:
    """An endpoint with a limit of its own that states none (search): kept from the start."""
    return Pacer(pace.requests, pace.window, portal=pace)
