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
        mappings: list[dict[str, Any]] = page.get("columnMappings", [])
        created = updated = 0
        index: dict[tuple[str, str, str], str] = {}  # (object, property, value) -> record id
        for kind, records in self.crm.objects.items():
            for rid, props in records.items():
                for prop, value in props.items():
                    index.setdefault((kind, prop, value), rid)
        for line, row in enumerate(job.rows, start=2 if page.get("hasHeader", True) else 1):
            outcome = self._row(job, mappings, row, line, index)
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
        mappings: list[dict[str, Any]],
        row: list[str],
        line: int,
        index: dict[tuple[str, str, str], str],
    ) -> str:
        type_id = str(mappings[0].get("columnObjectTypeId", "")) if mappings else ""
        kind = self.crm.kind(type_id) or ""
        operation = job.request["importOperations"].get(type_id)
        if kind not in self.crm.objects or operation is None:
            return self._fail(job, row, line, "INVALID_COLUMN_CONFIGURATION", kind, type_id)
        key_prop, key, properties = None, None, {}
        for number, mapping in enumerate(mappings):
            value = row[number] if number < len(row) else ""
            if mapping.get("columnType") == "HUBSPOT_OBJECT_ID":
                key = value
            elif mapping.get("columnType") == "HUBSPOT_ALTERNATE_ID":
                key_prop, key = str(mapping["propertyName"]), value
                properties[key_prop] = value
            elif value:
                properties[str(mapping.get("propertyName"))] = value
        records = self.crm.objects[kind]
        rid = None
        if key:
            rid = key if key_prop is None and key in records else None
            if key_prop is not None:
                rid = index.get((kind, key_prop, key))
        if rid is None and operation == "UPDATE":
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
        for prop, value in properties.items():
            index.setdefault((kind, prop, value), rid)
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
