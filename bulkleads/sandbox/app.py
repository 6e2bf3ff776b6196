"""The sandbox's HTTP behaviour, as a starlette app over a :class:`Sandbox` state object.

It follows HubSpot's Leads v1 rules (``specs/leads-v1.json``, written from
``shared/reference/``, never imported from the client): auth, body checks,
non-editable fields, the content-type no-op, rate-limit headers on every answer, 429 bodies
shaped like HubSpot's, and injectable faults. Clock and randomness are injected so tests can
drive the rolling window and the faults deterministically.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from bulkleads.sandbox import SANDBOX_TOKEN
from bulkleads.sandbox.associations import Associations
from bulkleads.sandbox.crm import CrmObjects
from bulkleads.sandbox.imports import Imports
from bulkleads.sandbox.leads import LeadRules, save_leads
from bulkleads.sandbox.limits import DailyCap, RollingWindow
from bulkleads.sandbox.properties import EMAIL_PROPERTIES, is_email

_FAULT_STATUSES = (500, 502, 503, 504)


# (objects root, properties root) of each API version the sandbox serves, as HubSpot does.
_CRM_ROOTS: Final = (
    ("/crm/objects/2026-09", "/crm/properties/2026-09"),
    ("/crm/v3/objects", "/crm/v3/properties"),
)


@dataclass
class SandboxConfig:
    """How the sandbox behaves; the CLI's ``bulkleads sandbox`` flags."""

    host: str = "127.0.0.1"
    port: int = 0
    seed: Path | None = None
    state: Path | None = None
    token: str = SANDBOX_TOKEN
    limit: int | None = 10
    window: float = 1.0
    daily: int | None = 40_000
    day: float = 86_400.0  # seconds from one daily reset to the next (from midnight UTC)
    retry_after: bool = False
    fail_rate: float = 0.0
    fail_definitions: bool = True  # False: faults spare the property definitions read
    definitions_forbidden: bool = False  # True: the token lacks the schema scope (403)
    drop_rate: float = 0.0
    noop_rate: float = 0.0  # share of writes answered as applied but not applied
    garble_rate: float = 0.0  # share of CRM batch writes answered 200 with a cut-short body
    locked_rate: float = 0.0  # share of requests answered 423 (HubSpot digesting a large sync)
    latency: float = 0.0
    crm_seeds: dict[str, Path] = field(default_factory=dict)
    crm_properties: dict[str, Path] = field(default_factory=dict)
    crm_schemas: tuple[Path, ...] = ()  # custom objects: HubSpot's schema JSON, one a file
    crm_pipelines: dict[str, Path] = field(default_factory=dict)  # deals, tickets: their pipelines


class DropConnection(Exception):
    """Raised after an update was applied, to close the connection without an answer."""


class _Dropped(Response):
    """Starts a response that promises a body, then drops the connection."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"16")]}
        )
        raise DropConnection


class Sandbox:
    """Leads, limits and counters; :attr:`app` serves them."""

    def __init__(
        self,
        config: SandboxConfig,
        leads: dict[str, dict[str, object]],
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        crm: CrmObjects | None = None,
        routes: Sequence[Callable[[Sandbox], list[Route]]] = (),
    ) -> None:
        """``routes``: the route tables served beside HubSpot's own paths (the association
        endpoints and the sandbox's ``/__sandbox/`` ones, in :mod:`.server`): given, so that
        their modules, which take this object, are not imported by it."""
        self.config = config
        self.leads = leads
        self.crm = crm or CrmObjects({})
        self.links = Associations(self.crm)
        self.imports = Imports(self.crm)
        self.clock = self._clock = clock
        self._rng = rng or random.Random()
        self.rules = LeadRules.load()
        self.window = RollingWindow(config.limit, config.window, clock) if config.limit else None
        self.daily = DailyCap(config.daily, config.day) if config.daily is not None else None
        self.statuses: Counter[int] = Counter()
        self.applied: Counter[str] = Counter()
        self.reads = 0
        self.definition_reads = 0  # GETs of property definitions answered
        self.noops = 0
        self.ignored_content_type = 0
        self.off_path: list[str] = []
        self._arrivals: deque[float] = deque()
        self.peak_arrivals = 0
        self.app = Starlette(
            routes=[
                Route("/leads/v1/lead/{guid}", self._put_lead, methods=["PUT"]),
                Route("/leads/v1/lead/{guid}", self._get_lead, methods=["GET"]),
                # HubSpot's date-versioned paths and the legacy v3 ones, the same bodies
                *(
                    route
                    for objects, properties in _CRM_ROOTS
                    for route in (
                        Route(
                            f"{objects}/{{object}}/batch/update",
                            self._batch_update,
                            methods=["POST"],
                        ),
                        Route(
                            f"{objects}/{{object}}/batch/read", self._batch_read, methods=["POST"]
                        ),
                        Route(
                            f"{objects}/{{object}}/batch/upsert",
                            self._batch_upsert,
                            methods=["POST"],
                        ),
                        Route(
                            f"{objects}/{{object}}/batch/create",
                            self._batch_create,
                            methods=["POST"],
                        ),
                        Route(
                            f"{objects}/{{object}}/batch/archive",
                            self._batch_archive,
                            methods=["POST"],
                        ),
                        Route(f"{properties}/{{object}}", self._properties, methods=["GET"]),
                        Route(f"{objects}/{{object}}/{{id}}", self._get_record, methods=["GET"]),
                    )
                ),
                *(route for table in routes for route in table(self)),
                Route("/crm/v3/pipelines/{object}", self._pipelines, methods=["GET"]),
                Route("/crm/pipelines/{version}/{object}", self._pipelines, methods=["GET"]),
                Route("/crm/v3/schemas", self._schemas, methods=["GET"]),
                Route("/crm-object-schemas/{version}/schemas", self._schemas, methods=["GET"]),
                Route(
                    "/account-info/{version}/api-usage/daily/private-apps",
                    self._daily_usage,
                    methods=["GET"],
                ),
                Route(
                    "/{path:path}",
                    self._off_path,
                    methods=["GET", "PUT", "POST", "DELETE", "PATCH"],
                ),
            ],
            lifespan=self._lifespan,
        )

    def __repr__(self) -> str:
        return f"<Sandbox {len(self.leads)} leads, {self.window!r}, {self.daily!r}>"

    @asynccontextmanager
    async def _lifespan(self, app: Starlette) -> Any:
        yield
        self.save()

    def save(self) -> None:
        if self.config.state is not None:
            save_leads(self.config.state, self.leads)

    # -- responses --------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.window is not None:
            headers.update(
                {
                    "X-HubSpot-RateLimit-Max": str(self.window.limit),
                    "X-HubSpot-RateLimit-Remaining": str(self.window.remaining()),
                    "X-HubSpot-RateLimit-Interval-Milliseconds": str(
                        round(self.window.window * 1000)
                    ),
                }
            )
        if self.daily is not None:
            headers["X-HubSpot-RateLimit-Daily"] = str(self.daily.limit)
            headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(self.daily.remaining())
        return headers

    def _answer(
        self,
        status: int,
        body: object = None,
        extra: dict[str, str] | None = None,
    ) -> Response:
        self.statuses[status] += 1
        headers = {**self._headers(), **(extra or {})}
        if body is None:
            return Response(status_code=status, headers=headers)
        return JSONResponse(body, status_code=status, headers=headers)

    def _error(self, status: int, message: str, **fields: object) -> Response:
        body = {
            "status": "error",
            "message": message,
            "correlationId": str(uuid.uuid4()),
            "requestId": str(uuid.uuid4()),
            **fields,
        }
        extra: dict[str, str] = {}
        if status == 429 and self.config.retry_after and self.window is not None:
            extra["Retry-After"] = str(max(1, math.ceil(self.window.retry_after())))
        return self._answer(status, body, extra)

    # -- routes -----------------------------------------------------------------------------
    def _authorized(self, request: Request, *, bearer_only: bool = False) -> bool:
        given = None if bearer_only else request.query_params.get("access_token")
        bearer = request.headers.get("authorization", "")
        if bearer.lower().startswith("bearer "):
            given = given or bearer[7:].strip()
        return given == self.config.token

    def _arrive(self) -> None:
        now = self._clock()
        self._arrivals.append(now)
        window = self.config.window
        while self._arrivals and self._arrivals[0] <= now - window:
            self._arrivals.popleft()
        self.peak_arrivals = max(self.peak_arrivals, len(self._arrivals))

    async def _put_lead(self, request: Request) -> Response:
        return await self._slowly(await self._handle_put(request))

    async def _batch_update(self, request: Request) -> Response:
        return await self._slowly(await self._handle_batch(request))

    async def _batch_read(self, request: Request) -> Response:
        return await self._slowly(await self._handle_batch(request, read=True))

    async def _batch_upsert(self, request: Request) -> Response:
        return await self._slowly(await self._handle_batch(request, kind="upsert"))

    async def _batch_create(self, request: Request) -> Response:
        return await self._slowly(await self._handle_batch(request, kind="create"))

    async def _batch_archive(self, request: Request) -> Response:
        return await self._slowly(await self._handle_batch(request, kind="archive"))

    async def _properties(self, request: Request) -> Response:
        """The object type's property definitions (a read like any other for the limits)."""
        crm_object = self.crm.kind(request.path_params["object"])
        if crm_object is None:
            return await self._off_path(request)
        faults = self.config.fail_definitions
        refused = self._admit(request, bearer_only=True, faults=faults)
        if refused is not None:
            return refused
        self.definition_reads += 1
        if self.config.definitions_forbidden:
            return self._error(
                403,
                "This app hasn't been granted all required scopes to make this call.",
                category="MISSING_SCOPES",
            )
        return self._answer(200, {"results": list(self.crm.definitions[crm_object].values())})

    async def _pipelines(self, request: Request) -> Response:
        """Deals' and tickets' pipelines with their stages, HubSpot's shape; a read like any
        other for the limits."""
        kind = self.crm.kind(request.path_params["object"])
        if kind is None or kind not in self.crm.pipelines:
            return await self._off_path(request)
        refused = self._admit(request, bearer_only=True)
        if refused is not None:
            return refused
        return self._answer(200, {"results": self.crm.pipelines[kind]})

    async def _schemas(self, request: Request) -> Response:
        """The portal's custom object schemas (``--crm-schema``), HubSpot's shape; a read
        like any other for the limits."""
        refused = self._admit(request, bearer_only=True)
        if refused is not None:
            return refused
        return self._answer(200, {"results": self.crm.schemas_served()})

    async def _daily_usage(self, request: Request) -> Response:
        """HubSpot's daily usage read, with ``resetsAt`` the next midnight in the portal's
        time zone (the sandbox's is UTC), or the end of a ``--day-seconds`` day. It counts
        against no limit and takes no fault, so it answers after the daily cap: HubSpot does
        not document whether it does."""
        if not self._authorized(request, bearer_only=True):
            return self._error(401, "Authentication credentials not found or invalid.")
        now = datetime.now(UTC)
        day = self.daily or DailyCap(0, self.config.day)
        midnight = datetime.fromtimestamp(day.resets_at(), UTC)
        usage = {
            "name": "private-apps-api-calls-daily",
            "usageLimit": self.daily.limit if self.daily is not None else 0,
            "currentUsage": self.daily.used if self.daily is not None else 0,
            "collectedAt": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "fetchStatus": "SUCCESS",
            "resetsAt": midnight.isoformat().replace("+00:00", "Z"),
        }
        return self._answer(200, {"results": [usage]})

    async def _slowly(self, response: Response) -> Response:
        """Every answer to a write or a read waits ``--latency-ms`` first."""
        if self.config.latency:
            await asyncio.sleep(self.config.latency)
        return response

    def _admit(
        self, request: Request, *, bearer_only: bool = False, faults: bool = True
    ) -> Response | None:
        """Auth, rate limits and (``faults``) injected faults, shared by every request; None
        admits."""
        self._arrive()
        if not self._authorized(request, bearer_only=bearer_only):
            return self._error(
                401,
                "Authentication credentials not found or invalid.",
                category="INVALID_AUTHENTICATION",
            )
        if self.window is not None and not self.window.try_accept():
            return self._error(
                429,
                "You have reached your ten_secondly_rolling limit.",
                errorType="RATE_LIMIT",
                policyName="TEN_SECONDLY_ROLLING",
            )
        if self.daily is not None and not self.daily.try_accept():
            return self._error(
                429,
                "You have reached your daily limit.",
                errorType="RATE_LIMIT",
                policyName="DAILY",
            )
        if faults and self.config.fail_rate and self._rng.random() < self.config.fail_rate:
            status = self._rng.choice(_FAULT_STATUSES)
            return self._error(status, "Injected fault: nothing was applied.")
        if faults and self.config.locked_rate and self._rng.random() < self.config.locked_rate:
            return self._error(
                423,
                "The portal is processing a large sync; wait at least 2 seconds and send again.",
                category="LOCKED",
            )
        return None

    def _noop(self) -> bool:
        """Whether this write is the silent no-op fault: answered as applied, not applied."""
        if self.config.noop_rate and self._rng.random() < self.config.noop_rate:
            self.noops += 1
            return True
        return False

    async def _handle_batch(
        self, request: Request, *, read: bool = False, kind: str = "update"
    ) -> Response:
        crm_object = self.crm.kind(request.path_params["object"])
        if crm_object is None:
            return await self._off_path(request)
        refused = self._admit(request, bearer_only=True)
        if refused is None:
            content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type != "application/json":
                refused = self._error(415, "Content-Type must be application/json.")
        if refused is not None:
            return refused
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            return self._error(400, "Invalid input JSON: the body is not JSON.")
        if read:
            self.reads += 1
            return self._answer(*self.crm.batch_read(crm_object, body))
        if kind == "archive":
            return self._answer(*self.crm.batch_archive(crm_object, body))
        if kind == "upsert":
            status, answer = self.crm.batch_upsert(crm_object, body)
        elif kind == "create":
            status, answer = self.crm.batch_create(crm_object, body)
        else:
            status, answer = self.crm.batch_update(crm_object, body, apply=not self._noop())
        if status < 300 and self.config.drop_rate and self._rng.random() < self.config.drop_rate:
            self.statuses[0] += 1
            return _Dropped()
        if (
            status < 300
            and self.config.garble_rate
            and self._rng.random() < self.config.garble_rate
        ):
            self.statuses[status] += 1
            whole = json.dumps(answer).encode()
            return Response(whole[: len(whole) // 2], status, self._headers(), "application/json")
        return self._answer(status, answer)

    async def _get_record(self, request: Request) -> Response:
        if not self._authorized(request, bearer_only=True):
            return self._error(401, "Authentication credentials not found or invalid.")
        records = self.crm.objects.get(self.crm.kind(request.path_params["object"]) or "", {})
        record = records.get(request.path_params["id"])
        if record is None:
            return self._error(404, "No such record.")
        return self._answer(200, {"id": request.path_params["id"], "properties": record})

    async def _handle_put(self, request: Request) -> Response:
        guid = request.path_params["guid"]
        refused = self._admit(request)
        if refused is not None:
            return refused
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            self.ignored_content_type += 1  # HubSpot accepts the call and applies nothing
            return self._answer(204)
        problem, fields = self._check_body(guid, await request.body())
        if problem:
            return self._error(400, problem)
        if guid not in self.leads:
            return self._error(404, f"No lead with guid {guid} exists in this portal.")
        if self._noop():
            return self._answer(204)
        self.leads[guid].update(fields)
        self.applied[guid] += 1
        if self.config.drop_rate and self._rng.random() < self.config.drop_rate:
            self.statuses[0] += 1  # 0: applied, answer lost
            return _Dropped()
        return self._answer(204)

    def _check_body(self, guid: str, raw: bytes) -> tuple[str | None, dict[str, object]]:
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return "The request body is not valid JSON.", {}
        if not isinstance(body, dict):
            return "The request body must be a JSON object.", {}
        if "guid" not in body:
            return "The lead guid is required in the request body.", {}
        if body["guid"] != guid:
            return f"The guid in the body ({body['guid']}) does not match the URL ({guid}).", {}
        fields = {k: v for k, v in body.items() if k != "guid"}
        refused = sorted(k for k in fields if k in self.rules.not_editable)
        if refused:
            return f"Field(s) not editable: {', '.join(refused)}.", {}
        for name, value in fields.items():
            if name in self.rules.booleans and not isinstance(value, bool):
                return f"Invalid value for {name}: expected a boolean.", {}
            if self.rules.is_timestamp(name) and (
                isinstance(value, bool) or not isinstance(value, int)
            ):
                return f"Invalid value for {name}: expected epoch milliseconds.", {}
            if name in EMAIL_PROPERTIES and value and not is_email(str(value)):
                return f"Invalid value for {name}: {value!r} is not a valid email address.", {}
        return None, fields

    async def _get_lead(self, request: Request) -> Response:
        """A lead as the API page documents it: a JSON array holding the lead. Reads count
        against the same limits as writes, and take the same latency and faults."""
        refused = self._admit(request)
        if refused is not None:
            return await self._slowly(refused)
        self.reads += 1
        lead = self.leads.get(request.path_params["guid"])
        if lead is None:
            return await self._slowly(self._error(404, "No such lead."))
        return await self._slowly(self._answer(200, [lead]))

    async def _off_path(self, request: Request) -> Response:
        if len(self.off_path) < 1000:
            self.off_path.append(f"{request.method} {request.url.path}")
        return self._error(404, "Not found.")
