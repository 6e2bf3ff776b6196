"""The sandbox's Imports API, as ``shared/reference/hubspot-api.md`` describes HubSpot's.

``POST /crm/imports/2026-09`` (legacy ``/crm/v3/imports``) takes a multipart form: the
``importRequest`` JSON (``importOperations`` ``{objectTypeId: UPDATE | CREATE | UPSERT}``, one
file's ``fileImportPage.columnMappings``: which column is the record id
(``HUBSPOT_OBJECT_ID``) or a unique property (``HUBSPOT_ALTERNATE_ID``), the others' properties)
and the CSV under ``files``. It is asynchronous: the answer says ``STARTED``; ``GET .../{id}``
gives the state and counters, ``GET .../{id}/errors`` each row refused. The reference's limits
hold: 1,048,576 rows or 512 MB a file, 80,000,000 rows a day, three imports at once. HubSpot
publishes neither how long an import takes nor the status of a refusal: here an import is done
at once (unless ``hold``: it stays ``PROCESSING`` until released, to have three running), and a
request past a limit is a 400 (the sandbox's choice).

bulkleads writes through the batch API, which gives every row an answer, a backup and an undo;
the sandbox serves imports so that an import can be rehearsed beside a job, and HubSpot's
client reads its answers (``tests/test_imports.py``). Its routes: :mod:`.import_routes`.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any, Final

from bulkleads.sandbox.crm import TYPE_IDS, CrmObjects

MAX_ROWS: Final = 1_048_576  # a file's rows
MAX_BYTES: Final = 512 * 1024 * 1024  # a file's size
ROWS_A_DAY: Final = 80_000_000
AT_ONCE: Final = 3  # imports running at the same time
OPERATIONS: Final = ("UPDATE", "CREATE", "UPSERT")
# the errors' objectType, as HubSpot's client knows them (a custom object has none)
_KIND: Final = {
    "contacts": "CONTACT",
    "companies": "COMPANY",
    "deals": "DEAL",
    "tickets": "TICKET",
    "products": "PRODUCT",
    "line_items": "LINE_ITEM",
}


@dataclass
class Import:
    """One import: its request, the file's rows, and what processing made of them."""

    id: str
    name: str
    request: dict[str, Any]
    rows: list[list[str]]
    state: str = "STARTED"
    created_at: str = field(default_factory=lambda: _iso(time.time()))
    counters: dict[str, int] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def answer(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state,
            "importName": self.name,
            "importSource": "API",
            "createdAt": self.created_at,
            "updatedAt": _iso(time.time()),
            "optOutImport": False,
            "importRequestJson": self.request,
            "mappedObjectTypeIds": sorted(self.request.get("importOperations", {})),
            "metadata": {"counters": self.counters, "fileIds": [], "objectLists": []},
        }


@dataclass(frozen=True)
class _Layout:
    """What a file's column mappings say, read once an import: the object and its operation,
    the key's column (the record id, or a unique property's value) and the property each
    column writes (``""`` for the key's and unmapped ones)."""

    type_id: str
    operation: str | None
    key_index: int | None
    key_prop: str | None  # None: the key is the record id
    columns: tuple[str, ...]

    @classmethod
    def of(cls, mappings: list[dict[str, Any]], operations: dict[str, str]) -> _Layout:
        type_id = str(mappings[0].get("columnObjectTypeId", "")) if mappings else ""
        key_index = key_prop = None
        columns = []
        for number, mapping in enumerate(mappings):
            kind = mapping.get("columnType")
            if kind in ("HUBSPOT_OBJECT_ID", "HUBSPOT_ALTERNATE_ID"):
                key_index = number
                key_prop = str(mapping["propertyName"]) if kind != "HUBSPOT_OBJECT_ID" else None
                columns.append("")
            else:
                columns.append(str(mapping.get("propertyName") or ""))
        return cls(type_id, operations.get(type_id), key_index, key_prop, tuple(columns))


class Imports:
    """The portal's imports, applied to :class:`CrmObjects`."""

    def __init__(self, crm: CrmObjects) -> None:
        self.crm = crm
        self.imports: dict[str, Import] = {}
        self.rows_today = 0
        self.hold = False  # new imports stay PROCESSING until released (set by /__sandbox/config)
        self._ids = itertools.count(1001)

    def start(
        self, request: object, size: int, rows: list[list[str]]
    ) -> tuple[int, dict[str, Any]]:
        """Take an import: its ``request`` (the parsed JSON), the file's ``size`` in bytes and
        its rows, header first when the request says it has one."""
        problem = self._refusal(request, size, rows)
        if problem is not None:
            return 400, error(problem)
        assert isinstance(request, dict)
        page = request["files"][0]["fileImportPage"]
        body = rows[1:] if page.get("hasHeader", True) else rows
        job = Import(str(next(self._ids)), str(request.get("name") or "import"), request, body)
        self.rows_today += len(body)
        self.imports[job.id] = job
        if self.hold:
            job.state = "PROCESSING"
        else:
            self._process(job)
        return 200, {**job.answer(), "state": "STARTED"}

    def release(self) -> None:
        """Let held imports finish (the sandbox's stand-in for time passing)."""
        self.hold = False
        for job in self.imports.values():
            if job.state == "PROCESSING":
                self._process(job)

    def _refusal(self, request: object, size: int, rows: list[list[str]]) -> str | None:
        if not isinstance(request, dict) or not isinstance(request.get("files"), list):
            return "importRequest needs files[] with their fileImportPage"
        operations = request.get("importOperations")
        if not isinstance(operations, dict) or not operations:
            return "importRequest needs importOperations (objectTypeId: UPDATE, CREATE, UPSERT)"
        if any(op not in OPERATIONS for op in operations.values()):
            return f"importOperations take {', '.join(OPERATIONS)}"
        if size > MAX_BYTES:
            return f"a file takes at most {MAX_BYTES} bytes (512 MB)"
        if len(rows) - 1 > MAX_ROWS:
            return f"a file takes at most {MAX_ROWS:,} rows"
        if self.rows_today + len(rows) - 1 > ROWS_A_DAY:
            return f"a portal imports at most {ROWS_A_DAY:,} rows a day"
        running = sum(1 for job in self.imports.values() if job.state == "PROCESSING")
        if running >= AT_ONCE:
            return f"at most {AT_ONCE} imports run at once: wait for one to finish"
        return None

    def _process(self, job: Import) -> None:
        """Apply each row as its object's operation says; a row that cannot be applied is an
        error naming its line, and the others still go in."""
        page = job.request["files"][0]["fileImportPage"]
        layout = _Layout.of(page.get("columnMappings", []), job.request["importOperations"])
        kind = self.crm.kind(layout.type_id) or ""
        # the records by their key property's value, read once (a row's lookup is then cheap)
        records = self.crm.objects.get(kind, {})
        index = {props[layout.key_prop]: rid for rid, props in records.items()
                 if layout.key_prop in props}  # fmt: skip
        created = updated = 0
        for line, row in enumerate(job.rows, start=2 if page.get("hasHeader", True) else 1):
            outcome = self._row(job, layout, kind, row, line, index)
            created += outcome == "created"
            updated += outcome == "updated"
        job.counters = {
            "TOTAL_ROWS": len(job.rows),
            "CREATED_OBJECTS": created,
            "UPDATED_OBJECTS": updated,
            "ERRORS": len(job.errors),
        }
        job.state = "DONE"

    def _row(
        self,
        job: Import,
        layout: _Layout,
        kind: str,
        row: list[str],
        line: int,
        index: dict[str, str],
    ) -> str:
        type_id = layout.type_id
        if kind not in self.crm.objects or layout.operation is None:
            return self._fail(job, row, line, "INVALID_COLUMN_CONFIGURATION", kind, type_id)
        values = dict(zip(layout.columns, row, strict=False))
        at = layout.key_index
        key = row[at] if at is not None and at < len(row) else ""
        properties = {prop: value for prop, value in values.items() if prop and value}
        if layout.key_prop:
            properties[layout.key_prop] = key
        records = self.crm.objects[kind]
        rid = None
        if key:
            rid = index.get(key) if layout.key_prop else (key if key in records else None)
        if rid is None and layout.operation == "UPDATE":
            return self._fail(job, row, line, "INVALID_OBJECT_ID", kind, type_id, key)
        unknown = [n for n in properties if n not in self.crm.definitions[kind]]
        if unknown:
            return self._fail(job, row, line, "PROPERTY_DEFINITION_NOT_FOUND", kind, type_id)
        if self.crm.value_details(kind, [properties]):
            return self._fail(job, row, line, "FAILED_VALIDATION", kind, type_id)
        if rid is None:
            rid = str(max((int(r) for r in records if r.isdigit()), default=0) + 1)
            records[rid] = dict(properties)
            self.crm.made(kind, rid)
            outcome = "created"
        else:
            records[rid].update(properties)
            outcome = "updated"
        if layout.key_prop and key:
            index.setdefault(key, rid)
        return outcome

    def _fail(
        self,
        job: Import,
        row: list[str],
        line: int,
        error_type: str,
        kind: str,
        type_id: str,
        value: str | None = None,
    ) -> str:
        job.errors.append(
            {
                "id": str(len(job.errors) + 1),
                "errorType": error_type,
                "createdAt": int(time.time() * 1000),
                "objectTypeId": TYPE_IDS.get(kind, type_id),
                **({"objectType": _KIND[kind]} if kind in _KIND else {}),
                **({"invalidValue": value} if value is not None else {}),
                "sourceData": {
                    "rowData": row,
                    "lineNumber": line,
                    "containsEncryptedProperties": False,
                },
            }
        )
        return "error"


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(seconds))


def error(message: str) -> dict[str, Any]:
    """HubSpot's shape of a refused request."""
    return {"status": "error", "category": "VALIDATION_ERROR", "message": message}
