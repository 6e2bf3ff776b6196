"""What a run reads from the portal before its first write, as pipeline steps: each returns a
new :class:`~bulkleads.pipeline.settings.Run` holding what it learned, and the requests it
made (the pacer counts them as its own)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

from bulkleads.errors import UsageError
from bulkleads.hubspot.crm import Crm
from bulkleads.hubspot.properties import parse
from bulkleads.pipeline.settings import Run
from bulkleads.plan.options import PlanOptions
from bulkleads.report.screen import Reporter
from bulkleads.send.portal_memory import Definitions


def read_portal(run: Run, out: Reporter) -> Run:
    """With a token: what the API must read from the portal first (CRM: the object's property
    definitions), once per run, or as a run of the last day read them (see
    :class:`~bulkleads.send.portal_memory.Definitions`)."""
    token = run.connection.token
    if isinstance(run.api, Crm) and run.api.needs_resolving:
        run = _resolve_object(run, run.api, out)
    if token is None or run.portal is not None:
        return run
    kept = definitions(run)
    key = _key(run)
    if run.api.reads_portal and (recalled := kept.recall(key)) is not None:
        listed, at = recalled
        try:
            remembered = parse(key.rsplit("/", 1)[-1], {"results": listed})
        except ValueError:
            kept.forget(key)
        else:
            ago = max(0, round((time.time() - at) / 60))
            out.info(
                f"checked against the portal's {len(remembered.properties)} "
                f"{_named(run, remembered.crm_object)} "
                f"properties as read {ago} min ago (kept for a day; a value the portal "
                "refuses makes the next run read them again)",
                event="properties",
                count=len(remembered.properties),
                remembered=True,
            )
            return _with_pipelines(replace(run, portal=remembered))
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
        kept.keep(key, portal.definitions())
        out.info(
            f"checked against the portal's {len(portal.properties)} "
            f"{_named(run, portal.crm_object)} properties",
            event="properties",
            count=len(portal.properties),
        )
    return _with_pipelines(replace(run, portal=portal, made=made))


def _with_pipelines(run: Run) -> Run:
    """Deals and tickets: the portal's pipelines beside its definitions, read each run (one
    request), so that a row's stage is checked against its own pipeline."""
    api, token, portal = run.api, run.connection.token, run.portal
    if not isinstance(api, Crm) or token is None or portal is None:
        return run
    pipelines = api.read_pipelines(
        run.connection.base_url,
        token,
        timeout=run.pace.timeout,
        patience=run.pace.send.max_retry_seconds,
    )
    if not pipelines:
        return run
    made = (*run.made, time.monotonic())
    return replace(run, portal=replace(portal, pipelines=pipelines), made=made)


def _named(run: Run, crm_object: str) -> str:
    """An object as the user named it: a custom object by its name, not its type id."""
    custom = run.api.custom if isinstance(run.api, Crm) else None
    return custom.name if custom is not None else crm_object


def _resolve_object(run: Run, api: Crm, out: Reporter) -> Run:
    """``--object`` that names no standard object: one of the portal's custom objects,
    from then on addressed by its object type id (one request, counted as the run's)."""
    token = run.connection.token
    if token is None:
        raise UsageError(
            f"--object {api.object_type}: no standard object has that name, and looking it up "
            "among the portal's custom objects needs the token (its schemas are read)"
        )
    resolved = api.resolve(
        run.connection.base_url,
        token,
        timeout=run.pace.timeout,
        patience=run.pace.send.max_retry_seconds,
    )
    custom = resolved.custom
    assert custom is not None  # resolve() found it, or raised
    out.info(
        f"--object {api.object_type}: the portal's custom object {custom.name} "
        f"({custom.object_type_id})",
        event="object",
        object_type_id=custom.object_type_id,
    )
    connection = replace(run.connection, api=resolved)
    return replace(run, connection=connection, made=(*run.made, time.monotonic()))


def check_links(run: Run, plan: PlanOptions, objects: Sequence[str], out: Reporter) -> Run:
    """With a token, once planning has found the ``objects`` the job links to and before the
    first request that writes: make sure the portal has each and associates the run's object
    with it (a custom object from then on addressed by its type id), refuse link keys that
    cannot find records, and resolve link labels to their type ids once. Without a backup, a
    record matched by a key has no id to link from."""
    by, labels = plan.link_keys, dict(plan.association_labels)
    if by and not run.reading.backup and run.rules().key != "id":
        raise UsageError(
            "associate: columns with --match need the records' ids, which reading gives: "
            "drop --no-backup"
        )
    token, api = run.connection.token, run.api
    if token is None or not (objects or by or labels):
        return run
    if not isinstance(api, Crm):
        raise UsageError("--associate-by and --association-label need --api crm-v3")
    started = time.monotonic()
    base, timeout = run.connection.base_url, run.pace.timeout
    patience = run.pace.send.max_retry_seconds
    known = len(api.linked)
    api, found = api.link_objects(
        base, token, sorted({*objects, *by, *labels}), timeout=timeout, patience=patience
    )
    for custom in api.linked[known:]:
        out.info(
            f"links to {custom.name}: the portal's custom object {custom.name} "
            f"({custom.object_type_id})",
            event="linked_object",
            object_type_id=custom.object_type_id,
        )
    made, kinds = api.check_links(base, token, by, labels, timeout=timeout, patience=patience)
    return replace(
        run,
        connection=replace(run.connection, api=api),
        made=(*run.made, *[started] * (found + made)),
        link_types=tuple(sorted(kinds.items())),
    )


def definitions(run: Run) -> Definitions:
    """Where this run's portal keeps the definitions it was read with."""
    return Definitions(run.job.folder().root, run.connection.base_url, run.connection.token)


def _key(run: Run) -> str:
    """The definitions' name in the portal's keeping: API, version and object."""
    identity = run.api.identity()
    version = run.api.to_meta().get("api_version", "")
    return f"{identity['api']}/{version}/{identity['object']}"


def forget_definitions(run: Run) -> None:
    """After the portal refused a value: the next run reads the definitions again."""
    definitions(run).forget(_key(run))
