"""The sandbox's CRM v3 objects: batch update checked against HubSpot's own OpenAPI specs.

Request bodies are validated against ``BatchInputSimplePublicObjectBatchInput`` from the specs
in ``specs/`` (copied from HubSpot; see ``specs/SOURCE.md``). Like the real API, a read-only or
unknown property refuses the whole batch with a 400, unknown records come back in a 207's
``errors`` with their ids in ``context.ids``, and everything else is applied and answered 200.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from bulkleads.sandbox.leads import load_records
from bulkleads.sandbox.properties import (
    DEFAULT_PIPELINES,
    EMAIL_PROPERTIES,
    PIPELINE_PROPERTIES,
    REQUIRED_TO_CREATE,
    default_definitions,
    merge_definitions,
    value_error,
)

if TYPE_CHECKING:
    from openapi_schema_validator import OAS30Validator

SPECS: Final = Path(__file__).with_name("specs")
# HubSpot's object type ids of the standard objects served here: a path may name one so.
TYPE_IDS: Final = {
    "contacts": "0-1",
    "companies": "0-2",
    "deals": "0-3",
    "tickets": "0-5",
    "products": "0-7",
    "line_items": "0-8",
    "leads": "0-136",
    # the engagements (properties.ENGAGEMENTS)
    "calls": "0-48",
    "emails": "0-49",
    "meetings": "0-47",
    "notes": "0-46",
    "tasks": "0-27",
}
OBJECTS: Final = tuple(TYPE_IDS)  # the standard objects served, by name
MAX_INPUTS: Final = 100
MAX_WITH_HISTORY: Final = 50  # a batch read asking for propertiesWithHistory


@cache
def spec(crm_object: str) -> dict[str, Any]:
    """HubSpot's OpenAPI document for one object type; the contacts' one for an object
    without its own here (the objects API has one batch shape for every object)."""
    own = SPECS / f"crm-v3-{crm_object}.json"
    path = own if own.exists() else SPECS / "crm-v3-contacts.json"
    return json.loads(path.read_text(encoding="utf-8"))


@cache
def validator(crm_object: str, schema: str) -> OAS30Validator:
    """A validator for ``#/components/schemas/<schema>`` of that object's spec. Imported on
    the first CRM request: the validator brings jsonschema and pydantic (0.15 s of CPU), which a
    Leads v1 sandbox never needs to start."""
    from openapi_schema_validator import OAS30Validator

    root = {"components": spec(crm_object)["components"], "$ref": f"#/components/schemas/{schema}"}
    return OAS30Validator(root)


def schema_errors(crm_object: str, schema: str, instance: object) -> list[str]:
    """Why ``instance`` does not match the schema (empty when it does)."""
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or 'body'}: {error.message}"
        for error in validator(crm_object, schema).iter_errors(instance)
    ]


def load_objects(path: Path) -> dict[str, dict[str, str]]:
    """Records by id from a seed: ``id`` plus properties (flat, or under ``properties``)."""
    records: dict[str, dict[str, str]] = {}
    for record in load_records(path, key="id"):
        rid = str(record.get("id") or "").strip()
        if not rid:
            raise ValueError(f"{path}: a CRM seed record has no id: {record!r}")
        nested = record.get("properties")
        props = (
            nested if isinstance(nested, dict) else {k: v for k, v in record.items() if k != "id"}
        )
        records[rid] = {k: "" if v is None else str(v) for k, v in props.items()}
    return records


class CrmObjects:
    """Records of each object type, changed by batch updates, and each type's property
    definitions (HubSpot-like defaults, or seeded)."""

    def __init__(
        self,
        objects: dict[str, dict[str, dict[str, str]]],
        definitions: dict[str, dict[str, dict[str, Any]]] | None = None,
        schemas: list[dict[str, Any]] | None = None,
        pipelines: dict[str, list[dict[str, Any]]] | None = None,
    ) -> None:
        """``schemas``: custom objects in HubSpot's schema shape, each served by its
        objectTypeId, its name and its fullyQualifiedName."""
        self.schemas = schemas or []
        self.aliases = {name: name for name in OBJECTS}
        self.aliases |= {type_id: name for name, type_id in TYPE_IDS.items()}
        self.base_names: dict[str, str] = {}  # a custom object's plain name, not for paths
        for schema in self.schemas:
            kind = str(schema["objectTypeId"])
            self.aliases[str(schema["fullyQualifiedName"])] = kind
            self.aliases[f"p_{schema['name']}"] = kind
            self.aliases[kind] = kind
            self.base_names[str(schema["name"])] = kind
        kinds = list(dict.fromkeys(self.aliases.values()))  # the standard ones first
        given = {self.own_kind(name) or name: records for name, records in objects.items()}
        self.objects = {name: given.get(name, {}) for name in kinds}
        self.definitions = {
            name: (definitions or {}).get(name) or default_definitions(name) for name in kinds
        }
        self.required = {name: REQUIRED_TO_CREATE.get(name, ()) for name in kinds}
        self.pipelines = {**DEFAULT_PIPELINES, **(pipelines or {})}
        for name, (pipeline_prop, stage_prop) in PIPELINE_PROPERTIES.items():
            # the stage property's options: every pipeline's stages, as HubSpot lists them
            held = self.definitions[name]
            listed = self.pipelines[name]
            held[pipeline_prop]["options"] = _options((p["label"], p["id"]) for p in listed)
            held[stage_prop]["options"] = _options(
                (stage["label"], stage["id"]) for p in listed for stage in p["stages"]
            )
        for schema in self.schemas:
            kind = str(schema["objectTypeId"])
            self.definitions[kind] = merge_definitions(kind, schema.get("properties", []))
            self.required[kind] = (tuple(schema.get("requiredProperties", ())),)
        self.applied: dict[str, int] = {}
        # the portal's property validation rules, enforced on API writes since 2026-09: per
        # object, each {"when": {property: value}, "required": [properties]}
        self.validation_rules: dict[str, list[dict[str, Any]]] = {}
        # values writes refuse although the definitions list them: an option removed on the
        # portal after a run read its definitions (set through /__sandbox/config)
        self.refused: dict[str, set[str]] = {}
        self.created: dict[str, list[str]] = {name: [] for name in kinds}
        # when each record was made (time.monotonic()), for search's eventual consistency
        self.made_at: dict[tuple[str, str], float] = {}
        self.archived: dict[str, list[str]] = {name: [] for name in kinds}

    def schemas_served(self) -> list[dict[str, Any]]:
        """The custom object schemas as HubSpot answers them: each property in its whole
        definition's shape (label, group, options, metadata), whatever the file left out."""
        served = []
        for schema in self.schemas:
            definitions = self.definitions[str(schema["objectTypeId"])]
            names = [str(p["name"]) for p in schema.get("properties", [])]
            served.append({**schema, "properties": [definitions[n] for n in names]})
        return served

    def made(self, crm_object: str, rid: str) -> None:
        """Count ``rid`` as made now (by a write or an import)."""
        self.created[crm_object].append(rid)
        self.made_at[(crm_object, rid)] = time.monotonic()

    def kind(self, name: str) -> str | None:
        """The object a HubSpot path names (a standard name; a custom object's objectTypeId,
        fully qualified name or ``p_{name}``), or None when the portal has no such object. A
        custom object's plain name is None, as HubSpot stopped taking it on 24 June 2025
        (developer changelog, "Removed support for referencing custom object types by base
        name")."""
        return self.aliases.get(name)

    def own_kind(self, name: str) -> str | None:
        """The object a seed or the sandbox's own routes name: its plain name too."""
        return self.aliases.get(name) or self.base_names.get(name)

    def remove_options(self, crm_object: str, removed: dict[str, list[str]]) -> None:
        """Take option values out of enumeration properties (a portal admin's edit)."""
        for name, values in removed.items():
            definition = self.definitions[crm_object][name]
            definition["options"] = [o for o in definition["options"] if o["value"] not in values]

    def batch_read(self, crm_object: str, body: object) -> tuple[int, dict[str, Any]]:
        """Read a batch of records (their requested properties, as strings, missing ones
        absent); unknown ids come back in a 207's errors, like HubSpot's. The spec marks
        ``propertiesWithHistory`` required; HubSpot (and its own examples) leave it out."""
        if isinstance(body, dict):
            body = {"propertiesWithHistory": [], **body}
        refused = _refuse(crm_object, "BatchReadInputSimplePublicObjectId", body)
        if refused is not None:
            return 400, refused
        assert isinstance(body, dict)
        inputs: list[dict[str, Any]] = body["inputs"]
        if body["propertiesWithHistory"] and len(inputs) > MAX_WITH_HISTORY:
            return 400, _error(
                "VALIDATION_ERROR",
                f"Batch size {len(inputs)} is above the limit of {MAX_WITH_HISTORY} inputs "
                "when propertiesWithHistory is requested.",
            )
        if (not_unique := self._not_unique(crm_object, body.get("idProperty"))) is not None:
            return 400, not_unique
        records = self.objects[crm_object]
        wanted: list[str] = body["properties"]
        started = _now()
        results, missing = [], []
        for item in inputs:
            rid = self._find(records, item["id"], body.get("idProperty"))
            if rid is None:
                missing.append(item["id"])
                continue
            props = {name: records[rid][name] for name in wanted if name in records[rid]}
            props["hs_object_id"] = rid
            results.append(
                {
                    "id": rid,
                    "properties": props,
                    "createdAt": started,
                    "updatedAt": started,
                    "archived": False,
                }
            )
        return self._answer(crm_object, results, missing, started)

    def batch_update(
        self, crm_object: str, body: object, *, apply: bool = True
    ) -> tuple[int, dict[str, Any]]:
        """Apply a batch (``apply`` False: answer as if, change nothing: HubSpot's silent
        no-op); returns the status and the JSON answer."""
        refused = _refuse(crm_object, "BatchInputSimplePublicObjectBatchInput", body)
        if refused is not None:
            return 400, refused
        assert isinstance(body, dict)
        inputs: list[dict[str, Any]] = body["inputs"]
        for item in inputs:
            by = item.get("idProperty")
            if crm_object == "contacts" and by == "email":  # reported failing, as below
                return 400, _non_unique(crm_object, by)  # (read and upsert take it)
            if (not_unique := self._not_unique(crm_object, by)) is not None:
                return 400, not_unique
        records = self.objects[crm_object]
        definitions = self.definitions[crm_object]
        read_only = {
            n for n, d in definitions.items() if d["modificationMetadata"]["readOnlyValue"]
        }
        known = {name for props in records.values() for name in props} | set(definitions)
        details = [
            {
                "isValid": False,
                "message": f'Property "{name}" does not exist'
                if name not in known
                else f'"{name}" is a read only property; its value cannot be set.',
                "error": "PROPERTY_DOESNT_EXIST" if name not in known else "READ_ONLY_VALUE",
                "name": name,
            }
            for name in sorted({n for item in inputs for n in item["properties"]})
            if name not in known or name in read_only
        ]
        details += self.value_details(crm_object, [item["properties"] for item in inputs])
        # each record found once: by a property, a search through every record
        rids = [self._find(records, item["id"], item.get("idProperty")) for item in inputs]
        held = [records[rid] if rid is not None else {} for rid in rids]
        details += self._stage_details(crm_object, [i["properties"] for i in inputs], held)
        if details:
            return 400, _invalid(details)
        started = _now()
        results, missing = [], []
        broken: dict[str, list[str]] = {}
        for item, rid in zip(inputs, rids, strict=True):
            if rid is None:
                missing.append(item["id"])
                continue
            if rule := self._broken_rule(crm_object, {**records[rid], **item["properties"]}):
                broken.setdefault(rule, []).append(rid)
                continue
            if apply:
                _write(records[rid], item["properties"], definitions)
                key = f"{crm_object}/{rid}"
                self.applied[key] = self.applied.get(key, 0) + 1
            results.append(
                {
                    "id": rid,
                    "properties": records[rid],
                    "createdAt": started,
                    "updatedAt": _now(),
                    "archived": False,
                }
            )
        return self._answer(crm_object, results, missing, started, broken)

    def _broken_rule(self, crm_object: str, record: dict[str, Any]) -> str | None:
        """The first of the portal's validation rules ``record`` (as written) breaks."""
        for rule in self.validation_rules.get(crm_object, []):
            when = rule.get("when", {})
            if all(str(record.get(k, "")) == str(v) for k, v in when.items()):
                lacking = [p for p in rule.get("required", []) if not record.get(p)]
                if lacking:
                    said = ", ".join(f"{k} is {v}" for k, v in when.items())
                    return f'Property "{lacking[0]}" is required when {said}'
        return None

    def value_details(self, crm_object: str, written: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """HubSpot's ``errors`` details for the values it refuses among ``written`` (each a
        record's properties): a bad option, number, date or email, or a value refused on
        demand (``refuse_values``)."""
        definitions = self.definitions[crm_object]
        details = []
        for properties in written:
            for name, value in properties.items():
                problem = name in definitions and value_error(definitions[name], str(value))
                if str(value) in self.refused.get(name, ()):
                    problem = f"{str(value)!r} was not one of the allowed options"
                if problem:
                    details.append(
                        {
                            "isValid": False,
                            "message": f"{problem} for {name}",
                            "error": _error_code(name, definitions[name]),
                            "name": name,
                        }
                    )
        return details

    def _stage_details(
        self, crm_object: str, written: list[dict[str, Any]], held: list[dict[str, str]]
    ) -> list[dict[str, Any]]:
        """A stage must be one of the record's pipeline (the one written with it, else the
        one it is in, else the object's first): HubSpot's refusal of any other."""
        if crm_object not in PIPELINE_PROPERTIES:
            return []
        pipeline_prop, stage_prop = PIPELINE_PROPERTIES[crm_object]
        pipelines = {p["id"]: p for p in self.pipelines[crm_object]}
        first = next(iter(pipelines))
        details = []
        for props, record in zip(written, held, strict=True):
            stage = props.get(stage_prop)
            if stage in (None, ""):
                continue
            pipeline = props.get(pipeline_prop) or record.get(pipeline_prop) or first
            stages = {s["id"] for s in pipelines.get(str(pipeline), {}).get("stages", [])}
            if str(stage) not in stages:
                details.append(
                    {
                        "isValid": False,
                        "message": f"'{stage}' is not a valid stage of pipeline {pipeline}",
                        "error": "INVALID_OPTION",
                        "name": stage_prop,
                    }
                )
        return details

    def batch_upsert(self, crm_object: str, body: object) -> tuple[int, dict[str, Any]]:
        """Update each record the input's ``idProperty`` value finds, else create it with that
        value; each result says ``new``. Only unique properties match (HubSpot's 400)."""
        refused = _refuse(crm_object, "BatchInputSimplePublicObjectBatchInputUpsert", body)
        if refused is not None:
            return 400, refused
        assert isinstance(body, dict)
        inputs: list[dict[str, Any]] = body["inputs"]
        for item in inputs:
            if (not_unique := self._not_unique(crm_object, item.get("idProperty"))) is not None:
                return 400, not_unique
        records = self.objects[crm_object]
        # each record found once: by a property, a search through every record
        rids = [self._find(records, str(i["id"]), str(i["idProperty"])) for i in inputs]
        written = [{str(i["idProperty"]): str(i["id"]), **i["properties"]} for i in inputs]
        new_ones = [props for props, rid in zip(written, rids, strict=True) if rid is None]
        if (lacking := _lacking(crm_object, new_ones, self.required[crm_object])) is not None:
            return 400, lacking
        held = [records[rid] if rid is not None else {} for rid in rids]
        details = self.value_details(crm_object, written)
        details += self._stage_details(crm_object, written, held)
        if details:
            return 400, _invalid(details)
        started = _now()
        results = []
        broken: dict[str, list[str]] = {}
        for item, found in zip(inputs, rids, strict=True):
            prop = str(item["idProperty"])
            # a key a record made earlier in this batch has by now
            rid = found if found is not None else self._find(records, str(item["id"]), prop)
            was = records[rid] if rid is not None else {}
            written_as = {**was, prop: str(item["id"]), **item["properties"]}
            if rule := self._broken_rule(crm_object, written_as):
                broken.setdefault(rule, []).append(str(item["id"]))  # named by its key
                continue
            new = rid is None
            if rid is None:
                rid = str(max((int(r) for r in records if r.isdigit()), default=0) + 1)
                value = str(item["id"]).lower() if prop == "email" else str(item["id"])
                records[rid] = {prop: value}
                self.made(crm_object, rid)
            _write(records[rid], item["properties"], self.definitions[crm_object])
            key = f"{crm_object}/{rid}"
            self.applied[key] = self.applied.get(key, 0) + 1
            results.append(
                {
                    "id": rid,
                    "properties": records[rid],
                    "createdAt": started,
                    "updatedAt": _now(),
                    "archived": False,
                    "new": new,
                }
            )
        return self._answer(crm_object, results, [], started, broken)

    def batch_create(self, crm_object: str, body: object) -> tuple[int, dict[str, Any]]:
        """Create a record per input: 201 with the records and their new ids. HubSpot's
        examples leave ``associations`` out where the spec marks it required: so may callers."""
        if isinstance(body, dict) and isinstance(body.get("inputs"), list):
            body = {
                **body,
                "inputs": [
                    {"associations": [], **item} if isinstance(item, dict) else item
                    for item in body["inputs"]
                ],
            }
        refused = _refuse(crm_object, "BatchInputSimplePublicObjectBatchInputForCreate", body)
        if refused is not None:
            return 400, refused
        assert isinstance(body, dict)
        made = [i["properties"] for i in body["inputs"]]
        if (lacking := _lacking(crm_object, made, self.required[crm_object])) is not None:
            return 400, lacking
        made = [i["properties"] for i in body["inputs"]]
        details = self.value_details(crm_object, made)
        details += self._stage_details(crm_object, made, [{} for _ in made])
        if details:
            return 400, _invalid(details)
        records = self.objects[crm_object]
        started = _now()
        results = []
        for item in body["inputs"]:
            rid = str(max((int(r) for r in records if r.isdigit()), default=0) + 1)
            records[rid] = dict(item["properties"])
            self.made(crm_object, rid)
            results.append(
                {
                    "id": rid,
                    "properties": records[rid],
                    "createdAt": started,
                    "updatedAt": started,
                    "archived": False,
                }
            )
        _, answer = self._answer(crm_object, results, [], started)
        return 201, answer

    def batch_archive(self, crm_object: str, body: object) -> tuple[int, dict[str, Any] | None]:
        """Archive records by id: 204 and no body, whether or not they existed (HubSpot's)."""
        refused = _refuse(crm_object, "BatchInputSimplePublicObjectId", body)
        if refused is not None:
            return 400, refused
        assert isinstance(body, dict)
        for item in body["inputs"]:
            if self.objects[crm_object].pop(str(item["id"]), None) is not None:
                self.archived[crm_object].append(str(item["id"]))
        return 204, None

    @staticmethod
    def _answer(
        crm_object: str,
        results: list[dict[str, Any]],
        missing: list[str],
        started: str,
        broken: dict[str, list[str]] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """200 with the results, or 207 naming the ids not found and the records a portal's
        validation rule refused (``broken``: each rule's message to the ids; HubSpot has not
        published this error's shape, so it is its usual per-record ``VALIDATION_ERROR``)."""
        answer: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": _now(),
        }
        errors = [
            {
                "status": "error",
                "category": "VALIDATION_ERROR",
                "message": f"Property values were not valid: {message}",
                "context": {"ids": ids},
                "errors": [{"message": message, "code": "VALIDATION_RULE"}],
                "links": {},
            }
            for message, ids in (broken or {}).items()
        ]
        if missing:
            kind = crm_object.rstrip("s").upper()
            errors.append(
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "message": f"Could not get some {kind} objects, they may be deleted or not "
                    "exist. Check that ids are valid.",
                    "context": {"ids": missing},
                    "errors": [],
                    "links": {},
                }
            )
        if not errors:
            return 200, answer
        answer["numErrors"] = len(errors)
        answer["errors"] = errors
        return 207, answer

    @staticmethod
    def _find(records: dict[str, dict[str, str]], key: str, prop: str | None) -> str | None:
        if prop is None:
            return key if key in records else None
        if prop == "email":  # HubSpot keeps emails lower case, and matches them so
            key = key.lower()
            return next(
                (r for r, props in records.items() if props.get(prop, "").lower() == key), None
            )
        return next((rid for rid, props in records.items() if props.get(prop) == key), None)

    def _not_unique(self, crm_object: str, prop: str | None) -> dict[str, Any] | None:
        """HubSpot's 400 for matching by a property whose values are not unique."""
        if prop is None:
            return None
        definition = self.definitions[crm_object].get(prop)
        if definition is not None and definition.get("hasUniqueValue"):
            return None
        return _non_unique(crm_object, prop)


def _non_unique(crm_object: str, prop: str) -> dict[str, Any]:
    """HubSpot's words for a match by a property it does not take as a key."""
    type_id = TYPE_IDS.get(crm_object, crm_object)
    return _error(
        "VALIDATION_ERROR",
        f"Unable to perform update/upsert by non-unique {type_id} property {prop}",
    )


def _options(pairs: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    return [
        {"label": label, "value": value, "hidden": False, "displayOrder": i}
        for i, (label, value) in enumerate(pairs)
    ]


def _write(record: dict[str, str], properties: dict[str, Any], definitions: dict[str, Any]) -> None:
    """Write ``properties`` as HubSpot does: a lifecycle stage earlier than the record's is
    ignored (the answer still 200), unless the stage was cleared first."""
    for name, value in properties.items():
        if name == "lifecyclestage":
            stages = [o["value"] for o in definitions.get(name, {}).get("options", [])]
            was = record.get(name)
            if was in stages and value in stages and stages.index(value) < stages.index(was):
                continue
        record[name] = value


def _refuse(crm_object: str, schema: str, body: object) -> dict[str, Any] | None:
    """The 400 answer for a batch body that is not the schema's, or holds over 100 inputs."""
    problems = schema_errors(crm_object, schema, body)
    if problems:
        return _error("VALIDATION_ERROR", "Invalid input JSON: " + "; ".join(problems))
    assert isinstance(body, dict)
    if len(body["inputs"]) > MAX_INPUTS:
        return _error(
            "VALIDATION_ERROR",
            f"Batch size {len(body['inputs'])} is above the limit of {MAX_INPUTS} inputs.",
        )
    return None


def _lacking(
    crm_object: str, created: list[dict[str, Any]], required: tuple[tuple[str, ...], ...]
) -> dict[str, Any] | None:
    """HubSpot's refusal of a create without what the object needs (the whole batch): one of
    the ``required`` sets, whole."""
    for props in created:
        missing = [[n for n in names if props.get(n) in (None, "")] for names in required]
        if missing and all(missing):
            needs = (
                " and ".join(missing[0]) + (" is" if len(missing[0]) == 1 else " are")
                if len(missing) == 1
                else ", or ".join(" and ".join(names) for names in required) + " are"
            )
            return _error(
                "VALIDATION_ERROR",
                f"Property values were not valid: {needs} required to create a "
                f"{crm_object.rstrip('s')}",
            )
    return None


def _error(category: str, message: str, **extra: object) -> dict[str, Any]:
    return {
        "status": "error",
        "category": category,
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "errors": [],
        "links": {},
        "context": {},
        **extra,
    }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _invalid(details: list[dict[str, Any]]) -> dict[str, Any]:
    """HubSpot's 400 for a batch holding values it refuses: the whole batch, every detail."""
    return _error(
        "VALIDATION_ERROR",
        "Property values were not valid: " + json.dumps(details, separators=(",", ":")),
    )


def _error_code(name: str, definition: dict[str, Any]) -> str:
    if name in EMAIL_PROPERTIES:
        return "INVALID_EMAIL"
    return "INVALID_OPTION" if definition["type"] == "enumeration" else "INVALID_VALUE"
