"""What a run reads from the portal before its first write, as pipeline steps: each returns a
new :class:`~bulkleads.pipeline.settings.Run` holding what it learned, and the requests it
made (the pacer counts them as its own)."""

from __future__ import annotations

import time
from dataclasses import replace

from bulkleads.errors import UsageError
from bulkleads.hubspot.associations import Linker
from bulkleads.pipeline.settings import Run
from bulkleads.plan.options import PlanOptions
from bulkleads.report.screen import Reporter


def read_portal(run: Run, out: Reporter) -> Run:
    """With a token: what the API must read from the portal first (CRM: the object's property
    definitions), once per run."""
    token = run.connection.token
    if token is None or run.portal is not None:
        return run
    portal = run.api.read_portal(
        run.connection.base_url,
        token,
        timeout=run.pace.timeout,
        patience=run.pace.send.max_retry_seconds,
    )
    # The loop's clock, once the answer is in: the pacer counts the read as its own until
    # then, as it counts its own requests until their answers (HubSpot counts their arrival;
    # the time before the call would free its slot too early, a 429 in a full window).
    made = (*run.made, time.monotonic()) if run.api.reads_portal else run.made
    if portal is not None:
        out.info(
            f"checked against the portal's {len(portal.properties)} {portal.crm_object} properties",
            event="properties",
            count=len(portal.properties),
        )
    return replace(run, portal=portal, made=made)


def check_links(run: Run, plan: PlanOptions) -> Run:
    """With a token, before the first request that writes: refuse link keys that cannot find
    records, and resolve link labels to their type ids once. Without a backup, a record
    matched by a key has no id to link from."""
    by, labels = plan.link_keys, dict(plan.association_labels)
    if by and not run.reading.backup and run.rules().key != "id":
        raise UsageError(
            "associate: columns with --match need the records' ids, which reading gives: "
            "drop --no-backup"
        )
    token = run.connection.token
    if token is None or not (by or labels):
        return run
    if not isinstance(run.api, Linker):
        raise UsageError("--associate-by and --association-label need --api crm-v3")
    started = time.monotonic()
    made, kinds = run.api.check_links(
        run.connection.base_url,
        token,
        by,
        labels,
        timeout=run.pace.timeout,
        patience=run.pace.send.max_retry_seconds,
    )
    return replace(
        run, made=(*run.made, *[started] * made), link_types=tuple(sorted(kinds.items()))
    )
