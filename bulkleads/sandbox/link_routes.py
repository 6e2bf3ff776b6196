"""The sandbox's routes for associations and search, over :class:`.associations.Associations`.

Associations are paced, faulted and authorised like every CRM request; search has its own limit
(``SEARCH_PER_SECOND``) and, as HubSpot's, answers without rate-limit headers.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bulkleads.sandbox.limits import RollingWindow

if TYPE_CHECKING:
    from bulkleads.sandbox.app import Sandbox

SEARCH_PER_SECOND: Final = 5
# The 2026-09 association root and the legacy v4 one, the same bodies (as for objects).
_ROOTS: Final = ("/crm/associations/2026-09", "/crm/v4/associations")
_SEARCH_ROOTS: Final = ("/crm/objects/2026-09", "/crm/v3/objects")


def link_routes(box: Sandbox) -> list[Route]:
    """Routes for ``box``: association batches and labels, and each object's search."""
    links = box.links
    search_window = RollingWindow(SEARCH_PER_SECOND, 1.0, box.clock)

    async def body_of(request: Request) -> tuple[Any, Response | None]:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return None, box._error(415, "Content-Type must be application/json.")
        try:
            return json.loads(await request.body()), None
        except (ValueError, UnicodeDecodeError):
            return None, box._error(400, "Invalid input JSON: the body is not JSON.")

    def between(
        call: Callable[[str, str, Any], tuple[int, Any]], *, reads: bool = True
    ) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            a = box.crm.kind(request.path_params["from"]) or request.path_params["from"]
            b = box.crm.kind(request.path_params["to"]) or request.path_params["to"]
            if not links.known(a, b):
                return await box._off_path(request)
            refused = box._admit(request, bearer_only=True)
            if refused is not None:
                return await box._slowly(refused)
            body, bad = await body_of(request) if reads else (None, None)
            if bad is not None:
                return bad
            return await box._slowly(box._answer(*call(a, b, body)))

        return handle

    async def search(request: Request) -> Response:
        crm_object = box.crm.kind(request.path_params["object"])
        if crm_object is None:
            return await box._off_path(request)
        if not box._authorized(request, bearer_only=True):
            return box._error(401, "Authentication credentials not found or invalid.")
        if not search_window.try_accept():  # its own limit, and no rate headers
            box.statuses[429] += 1
            return JSONResponse(
                {"status": "error", "message": "You have reached your secondly limit.",
                 "errorType": "RATE_LIMIT", "policyName": "SECONDLY"},
                status_code=429,
            )  # fmt: skip
        body, bad = await body_of(request)
        if bad is not None:
            return bad
        status, answer = links.search(crm_object, body)
        box.statuses[status] += 1
        return await box._slowly(JSONResponse(answer, status_code=status))

    routes = [
        route
        for root in _ROOTS
        for route in (
            Route(
                f"{root}/{{from}}/{{to}}/batch/read", between(links.batch_read), methods=["POST"]
            ),
            Route(
                f"{root}/{{from}}/{{to}}/batch/associate/default",
                between(links.associate_default),
                methods=["POST"],
            ),
            Route(f"{root}/{{from}}/{{to}}/batch/create", between(links.create), methods=["POST"]),
            Route(
                f"{root}/{{from}}/{{to}}/batch/archive", between(links.archive), methods=["POST"]
            ),
            Route(
                f"{root}/{{from}}/{{to}}/batch/labels/archive",
                between(links.archive_labels),
                methods=["POST"],
            ),
            Route(
                f"{root}/{{from}}/{{to}}/labels",
                between(lambda a, b, _: links.labels(a, b), reads=False),
                methods=["GET"],
            ),
            Route(f"{root}/{{from}}/{{to}}/labels", between(links.create_label), methods=["POST"]),
        )
    ]
    routes += [
        Route(f"{root}/{{object}}/search", search, methods=["POST"]) for root in _SEARCH_ROOTS
    ]

    async def pairs(request: Request) -> Response:
        """The sandbox's own view of the links (tests compare it before and after)."""
        a = box.crm.own_kind(request.path_params["from"]) or request.path_params["from"]
        b = box.crm.own_kind(request.path_params["to"]) or request.path_params["to"]
        return JSONResponse(links.pairs(a, b))

    routes.append(Route("/__sandbox/associations/{from}/{to}", pairs, methods=["GET"]))
    return routes
