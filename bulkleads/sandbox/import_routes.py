"""The sandbox's routes for imports, over :class:`.imports.Imports` (bearer token only)."""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bulkleads.sandbox.imports import error

if TYPE_CHECKING:
    from bulkleads.sandbox.app import Sandbox

# The 2026-09 root and the legacy v3 one (HubSpot's client posts to the latter with a slash).
_ROOTS: Final = ("/crm/imports/2026-09", "/crm/v3/imports")


def import_routes(box: Sandbox) -> list[Route]:
    """Routes for ``box``'s imports: start one, its state, its errors (bearer token only)."""
    imports = box.imports

    async def start(request: Request) -> Response:
        if not box._authorized(request, bearer_only=True):
            return box._error(401, "Authentication credentials not found or invalid.")
        form = await request.form()
        upload, raw = form.get("files"), form.get("importRequest")
        if upload is None or isinstance(upload, str) or not isinstance(raw, str):
            return JSONResponse(error("the form needs files and importRequest"), 400)
        data = await upload.read()
        try:
            parsed = json.loads(raw)
            rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
        except (ValueError, UnicodeDecodeError):
            return JSONResponse(error("importRequest is not JSON, or the file not UTF-8"), 400)
        status, answer = imports.start(parsed, len(data), rows)
        return JSONResponse(answer, status)

    async def one(request: Request) -> Response:
        if not box._authorized(request, bearer_only=True):
            return box._error(401, "Authentication credentials not found or invalid.")
        job = imports.imports.get(request.path_params["id"])
        if job is None:
            return box._error(404, "No such import.")
        if request.url.path.endswith("/errors"):
            return JSONResponse({"results": job.errors})
        return JSONResponse(job.answer())

    return [
        route
        for root in _ROOTS
        for route in (
            Route(root, start, methods=["POST"]),
            Route(f"{root}/", start, methods=["POST"]),
            Route(f"{root}/{{id}}", one, methods=["GET"]),
            Route(f"{root}/{{id}}/errors", one, methods=["GET"]),
        )
    ]
