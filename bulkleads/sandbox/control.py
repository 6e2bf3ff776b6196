"""The sandbox's own endpoints under ``/__sandbox/``: what tests and benchmarks read (the
records, the leads, the counters) and change (limits and faults) while it runs. HubSpot has
nothing like them; a client never calls them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bulkleads.sandbox.limits import DailyCap

if TYPE_CHECKING:
    from bulkleads.sandbox.app import Sandbox


def control_routes(box: Sandbox) -> list[Route]:
    """``box``'s records, leads, counters and settings."""

    async def objects(request: Request) -> Response:
        return JSONResponse(
            box.crm.objects.get(box.crm.own_kind(request.path_params["object"]) or "", {})
        )

    async def state(request: Request) -> Response:
        return JSONResponse(box.leads)

    async def stats(request: Request) -> Response:
        return JSONResponse(
            {
                "requests": {str(k): v for k, v in sorted(box.statuses.items())},
                "applied": dict(box.applied),
                "applied_total": sum(box.applied.values()),
                "reads": box.reads,
                "definition_reads": box.definition_reads,
                "noops": box.noops,
                "crm_applied": box.crm.applied,
                "crm_applied_total": sum(box.crm.applied.values()),
                "crm_created": sum(len(ids) for ids in box.crm.created.values()),
                "crm_archived": sum(len(ids) for ids in box.crm.archived.values()),
                "links_added": box.links.added,
                "labels_added": box.links.labels_added,
                "links_archived": box.links.archived,
                "searches": box.links.searches,
                "peak_accepted_in_window": box.window.peak if box.window else None,
                "peak_arrivals_in_window": box.peak_arrivals,
                "ignored_content_type": box.ignored_content_type,
                "daily_used": box.daily.used if box.daily else None,
                "off_path": box.off_path,
            }
        )

    async def configure(request: Request) -> Response:
        """Change limits and faults while running (tests and benchmarks). The body is a JSON
        object with any of: ``daily`` (requests a day, or null for none), ``reset_daily``
        (true: the day starts again), ``fail_rate``, ``fail_definitions`` (false: faults
        spare the property definitions read), ``definitions_forbidden`` (true: that read
        answers 403, the token lacking the scope), ``drop_rate``, ``noop_rate``,
        ``garble_rate``, ``locked_rate`` (0 to 1),
        ``latency_ms``, ``search_lag`` (seconds before search finds a new record),
        ``imports_hold`` (true: new imports stay PROCESSING; false: they finish),
        ``validation_rules`` (object to the portal's rules, each ``{"when": {property:
        value}, "required": [property, ...]}``, enforced on batch update and upsert),
        ``retry_after`` (true or false) and ``refuse_values`` (property name
        to the values its writes now refuse with HubSpot's INVALID_OPTION, though its
        definition still lists them: an option removed after a run read the definitions)."""
        changes = await request.json()
        if "daily" in changes:
            daily = changes["daily"]
            box.daily = DailyCap(int(daily), box.config.day) if daily is not None else None
        if "reset_daily" in changes:
            box.imports.rows_today = 0
            if box.daily is not None:
                box.daily.used = 0
        names = (
            "fail_rate",
            "fail_definitions",
            "drop_rate",
            "noop_rate",
            "garble_rate",
            "locked_rate",
        )
        for name in (*names, "retry_after", "definitions_forbidden"):
            if name in changes:
                setattr(box.config, name, changes[name])
        if "refuse_values" in changes:
            box.crm.refused = {k: set(v) for k, v in changes["refuse_values"].items()}
        for crm_object, removed in changes.get("remove_options", {}).items():
            box.crm.remove_options(crm_object, removed)
        if changes.get("imports_hold") is True:
            box.imports.hold = True
        elif changes.get("imports_hold") is False:
            box.imports.release()
        if "validation_rules" in changes:
            box.crm.validation_rules = {
                box.crm.own_kind(name) or name: list(rules)
                for name, rules in changes["validation_rules"].items()
            }
        if "search_lag" in changes:
            box.links.search_lag = float(changes["search_lag"])
        if "latency_ms" in changes:  # the same unit as --latency-ms
            box.config.latency = float(changes["latency_ms"]) / 1000
        return JSONResponse({"ok": True})

    return [
        Route("/__sandbox/objects/{object}", objects, methods=["GET"]),
        Route("/__sandbox/state", state, methods=["GET"]),
        Route("/__sandbox/stats", stats, methods=["GET"]),
        Route("/__sandbox/config", configure, methods=["POST"]),
    ]
