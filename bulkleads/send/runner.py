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
from bulkleads.jobstore.requests import Timeline
from bulkleads.jobstore.store import JobStore
from bulkleads.send.interrupts import Interrupts
from bulkleads.send.link_phases import CheckPhase, FindPhase, LinkPhase, LinkWork, OwnEndpoint
from bulkleads.send.options import Say, Sending
from bulkleads.send.pacing import Pacer
from bulkleads.send.phases import (
    ArchivePhase,
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
    phases: list[Phase] = [read_phase(store, run, states, target)] if backup else []
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
    meta = store.meta()
    by, types = meta.get("associate_by") or {}, meta.get("association_types") or {}
    assert isinstance(by, dict) and isinstance(types, dict)
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
    memory = run.memory
    pace = run.pace
    asked = pace.asked(run.api)
    pacer = Pacer(
        asked.requests,
        asked.window,
        made=[*run.made, *memory.made(loop.time())],
        explicit=pace.explicit,
        portal=memory.limit,
    )
    timeline = Timeline(store.requests, store.requests.next_run())
    limits = httpx.Limits(
        max_connections=pace.send.concurrency, max_keepalive_connections=pace.send.concurrency
    )
    total = SendStats()
    interrupts = interrupts or Interrupts(out, run.command)
    active = interrupts.active  # the senders a signal stops

    async def one(phase: Phase, transport: httpx.AsyncBaseTransport, *, shown: bool) -> None:
        todo = phase.pending()
        if not todo or total.stop_reason is not None:
            return
        noun = (phase.unit if isinstance(phase, LinkWork) else None) or run.rules.noun
        progress = out.progress(todo, phase.label, unit=plural(todo, noun)) if shown else None
        own = phase if isinstance(phase, OwnEndpoint) else None
        sender = Sender(
            store,
            own.target if own else target,
            _own_pacer(own.pace) if own and own.pace else pacer,
            transport,
            pace.send,
            timeout=pace.timeout,
            on_result=progress.advance if progress else None,
            timeline=timeline,
        )
        active.append(sender)
        try:
            stats = await sender.run(phase=phase)
        finally:
            active.remove(sender)
            if progress:
                progress.close()
        total.add(stats)
        if stats.stop_reason is not None:  # a stop of one phase stops those beside it
            for other in active:
                other.stop(stats.stop_reason, stats.stop_detail or "")

    async def in_turn(
        some: Sequence[Phase], transport: httpx.AsyncBaseTransport, *, shown: bool = True
    ) -> None:
        for phase in some:
            await one(phase, transport, shown=shown)

    # Finding the records to link to needs only the plan: it goes beside the records' own
    # phases (a search at its own pace leaves the portal's window to them); the rest of
    # the links need both, and follow.
    beside = [p for p in phases if isinstance(p, FindPhase)]
    links = [p for p in phases if isinstance(p, LinkWork) and p not in beside]
    records = [p for p in phases if p not in beside and p not in links]
    started = loop.time()
    try:
        with interrupts.on_loop(total):
            async with httpx.AsyncHTTPTransport(limits=limits) as transport:
                await asyncio.gather(
                    in_turn(records, transport), in_turn(beside, transport, shown=not records)
                )
                await in_turn(links, transport)
    finally:
        memory.save(pacer, loop.time())
    total.elapsed = loop.time() - started  # phases beside each other overlap
    total.before = len(run.made)  # the portal counted them: so does the run's summary
    total.requests += total.before
    total.limit, total.utilization = pacer.limit(), pacer.utilization()
    if total.requests:  # what the page of `report --html` draws this run against
        runs = store.meta().get("runs")
        store.set_meta(
            {
                "runs": [
                    *(runs if isinstance(runs, list) else []),
                    {
                        "run": timeline.run,
                        "limit": total.limit.requests,
                        "window": total.limit.window,
                        "utilization": total.utilization,
                    },
                ]
            }
        )
    return total


def _own_pacer(pace: Limit) -> Pacer:
    """An endpoint with a limit of its own that states none (search): kept from the start."""
    return Pacer(pace.requests, pace.window, portal=pace)
