"""The sandbox's associations between CRM records, and the search that finds records by a
property (how HubSpot's importer finds a company by its domain, which is not unique).

Written from ``shared/reference/hubspot-api.md`` ("Today's HubSpot"): the 2026-09 association
endpoints (``/crm/associations/2026-09/{from}/{to}/...``; the legacy ``/crm/v4/associations``
the same) answer in HubSpot's shapes; an association is one link seen from both sides; HubSpot's
default type between contacts and companies is 279 (280 the other way). The search endpoint has
a limit of its own (about 5 requests a second) and sends no rate-limit headers.
"""

from __future__ import annotations

import time
from typing import Any, Final

from bulkleads.sandbox.crm import TYPE_IDS, CrmObjects
from bulkleads.sandbox.properties import ENGAGEMENTS

_HUBSPOT: Final = "HUBSPOT_DEFINED"
_USER: Final = "USER_DEFINED"
# Association types: (from, to) -> (HubSpot's default type id, labeled types: id -> (label,
# category)). HubSpot's own "Primary" company; a portal's own label ("Billing contact", 47
# one way, 48 the other), as a portal that made one has.
_TYPES: Final[dict[tuple[str, str], tuple[int, dict[int, tuple[str, str]]]]] = {
    ("contacts", "companies"): (279, {1: ("Primary", _HUBSPOT), 47: ("Billing contact", _USER)}),
    ("companies", "contacts"): (280, {2: ("Primary", _HUBSPOT), 48: ("Billing contact", _USER)}),
    ("deals", "contacts"): (3, {}),
    ("contacts", "deals"): (4, {}),
    ("deals", "companies"): (341, {5: ("Primary", _HUBSPOT)}),
    ("companies", "deals"): (342, {6: ("Primary", _HUBSPOT)}),
    # HubSpot's default types of tickets and line items (its association type id table)
    ("contacts", "tickets"): (15, {}),
    ("tickets", "contacts"): (16, {}),
    ("companies", "tickets"): (25, {}),
    ("tickets", "companies"): (26, {}),
    ("deals", "tickets"): (27, {}),
    ("tickets", "deals"): (28, {}),
    ("deals", "line_items"): (19, {}),
    ("line_items", "deals"): (20, {}),
    # engagements (activities) with the four records they are logged on: HubSpot's default
    # types, one id each way (its association type id table)
    **{
        pair: (type_id, {})
        for record, ids in (
            ("contacts", (193, 197, 199, 201, 203)),
            ("companies", (181, 185, 187, 189, 191)),
            ("deals", (205, 209, 211, 213, 215)),
            ("tickets", (219, 223, 225, 227, 229)),
        )
        for engagement, one_way in zip(ENGAGEMENTS, ids, strict=True)
        for pair, type_id in (((record, engagement), one_way), ((engagement, record), one_way + 1))
    },
}
_PAIRED: Final = {1: 2, 2: 1, 47: 48, 48: 47, 5: 6, 6: 5}  # a labeled type's other side
_FIRST_NEW_LABEL: Final = 500  # the type id of the first label made here (the sandbox's choice)
MAX_READ: Final = 1000  # batch read of associations (HubSpot's documented cap)
MAX_WRITE: Final = 100
MAX_SEARCH: Final = 200  # results a search page holds
MAX_SEARCH_RESULTS: Final = 10_000  # results a search query gives at most, pages together
MAX_FILTER_VALUES: Final = 100


class Associations:
    """Links between records of :class:`CrmObjects`, each stored once per direction."""

    def __init__(self, crm: CrmObjects) -> None:
        self.crm = crm
        # the standard types, and each custom object's from its schema's associations (its
        # type id one way; the sandbox gives the other way that id plus one)
        self.types = {pair: (default, dict(labeled)) for pair, (default, labeled) in _TYPES.items()}
        self.paired = dict(_PAIRED)
        self.type_ids = {**TYPE_IDS, **{kind: kind for kind in crm.objects if "-" in kind}}
        names = {v: k for k, v in self.type_ids.items()}
        for schema in crm.schemas:
            for link in schema.get("associations", []):
                a = names.get(str(link.get("fromObjectTypeId")))
                b = names.get(str(link.get("toObjectTypeId")))
                if a and b and str(link.get("id", "")).isdigit():
                    self.types[(a, b)] = (int(link["id"]), {})
                    self.types.setdefault((b, a), (int(link["id"]) + 1, {}))
        # (from object, to object) -> from id -> to id -> type ids
        self.links: dict[tuple[str, str], dict[str, dict[str, set[int]]]] = {}
        self.added = 0
        self.labels_added = 0
        self.archived = 0
        self.searches = 0
        self.search_lag = 0.0  # seconds a new record takes to be found (set by /__sandbox/config)

    def pairs(self, a: str, b: str) -> list[list[str]]:
        """Every linked ``[from id, to id]``, sorted (the sandbox's own view, for tests)."""
        return sorted(
            [f, t]
            for f, tos in self.links.get((a, b), {}).items()
            for t in tos
            if self._both(a, f, b, t)
        )

    def _both(self, a: str, fid: str, b: str, tid: str) -> bool:
        """Whether both records still exist: an archived record's links are gone with it."""
        return fid in self.crm.objects[a] and tid in self.crm.objects[b]

    def known(self, a: str, b: str) -> bool:
        return (a, b) in self.types

    def labels(self, a: str, b: str) -> tuple[int, dict[str, Any]]:
        default, labeled = self.types[(a, b)]
        results = [{"category": _HUBSPOT, "typeId": default, "label": None}]
        results += [
            {"category": category, "typeId": tid, "label": label}
            for tid, (label, category) in labeled.items()
        ]
        return 200, {"results": results}

    def create_label(self, a: str, b: str, body: Any) -> tuple[int, dict[str, Any]]:
        """A portal's own label for links from ``a`` to ``b`` (``{label, name, inverseLabel?}``,
        as a portal admin makes one): a type each way, the other way labeled ``inverseLabel``
        or the same. Answers the new types, from ``a`` to ``b`` first; its ids are the
        sandbox's own (from :data:`_FIRST_NEW_LABEL`, one way then the other)."""
        if not isinstance(body, dict) or not str(body.get("label") or "").strip():
            return 400, _error("VALIDATION_ERROR", "a label needs its label and name")
        label = str(body["label"])
        inverse = str(body.get("inverseLabel") or label)
        taken = [t for _, labeled in self.types.values() for t in labeled]
        one = max([_FIRST_NEW_LABEL - 1, *taken]) + 1
        self.types[(a, b)][1][one] = (label, _USER)
        self.types[(b, a)][1][one + 1] = (inverse, _USER)
        self.paired |= {one: one + 1, one + 1: one}
        results = [
            {"category": _USER, "typeId": one, "label": label},
            {"category": _USER, "typeId": one + 1, "label": inverse},
        ]
        return 200, {"results": results}

    def batch_read(self, a: str, b: str, body: Any) -> tuple[int, dict[str, Any]]:
        """Each input's links (``toObjectId`` and types); ids with none are named in a 207."""
        inputs = _inputs(body, MAX_READ)
        if isinstance(inputs, str):
            return 400, _error("VALIDATION_ERROR", inputs)
        results, without = [], []
        for item in inputs:
            fid = str(item.get("id", "")) if isinstance(item, dict) else ""
            tos = {
                t: types
                for t, types in self.links.get((a, b), {}).get(fid, {}).items()
                if self._both(a, fid, b, t)
            }
            if not tos:
                without.append(fid)
                continue
            results.append(
                {
                    "from": {"id": fid},
                    "to": [
                        {
                            "toObjectId": int(tid) if tid.isdigit() else tid,
                            "associationTypes": [self._type(a, b, t) for t in sorted(types)],
                        }
                        for tid, types in tos.items()
                    ],
                }
            )
        if not without:
            return 200, {"status": "COMPLETE", "results": results}
        message = f"No {b} is associated with {a} {', '.join(without)}"
        return 207, _partly(results, message, fromObjectId=without)

    def associate_default(self, a: str, b: str, body: Any) -> tuple[int, dict[str, Any]]:
        """Link each ``{from: {id}, to: {id}}`` with HubSpot's default type; records that do
        not exist are named in a 207 and linked to nothing."""
        inputs = _inputs(body, MAX_WRITE)
        if isinstance(inputs, str):
            return 400, _error("VALIDATION_ERROR", inputs)
        pairs = []
        for item in inputs:
            try:
                pairs.append((str(item["from"]["id"]), str(item["to"]["id"])))
            except (KeyError, TypeError):
                return 400, _error("VALIDATION_ERROR", "each input needs from.id and to.id")
        return self._link(a, b, [(f, t, self.types[(a, b)][0]) for f, t in pairs])

    def create(self, a: str, b: str, body: Any) -> tuple[int, dict[str, Any]]:
        """Link with the types each input names (``associationCategory``,
        ``associationTypeId``); an unknown type id refuses the batch."""
        inputs = _inputs(body, MAX_WRITE)
        if isinstance(inputs, str):
            return 400, _error("VALIDATION_ERROR", inputs)
        default, labeled = self.types[(a, b)]
        triples = []
        for item in inputs:
            try:
                fid, tid = str(item["from"]["id"]), str(item["to"]["id"])
                types = [int(t["associationTypeId"]) for t in item["types"]]
            except (KeyError, TypeError, ValueError):
                return 400, _error("VALIDATION_ERROR", "each input needs from.id, to.id, types")
            if bad := [t for t in types if t != default and t not in labeled]:
                return 400, _error("VALIDATION_ERROR", f"unknown association type {bad[0]}")
            triples += [(fid, tid, t) for t in types]
        return self._link(a, b, triples, labeled=True)

    def archive_labels(self, a: str, b: str, body: Any) -> tuple[int, dict[str, Any] | None]:
        """Remove the named types from each pair, keeping the pair's other types (a pair left
        with none is unlinked): 204."""
        inputs = _inputs(body, MAX_WRITE)
        if isinstance(inputs, str):
            return 400, _error("VALIDATION_ERROR", inputs)
        for item in inputs:
            try:
                fid, tid = str(item["from"]["id"]), str(item["to"]["id"])
                types = {int(t["associationTypeId"]) for t in item["types"]}
            except (KeyError, TypeError, ValueError):
                return 400, _error("VALIDATION_ERROR", "each input needs from.id, to.id, types")
            for x, xid, y, yid, kinds in ((a, fid, b, tid, types), (b, tid, a, fid, None)):
                held = self.links.get((x, y), {}).get(xid, {})
                if yid not in held:
                    continue
                held[yid] -= kinds if kinds is not None else {self.paired.get(t, t) for t in types}
                if not held[yid]:
                    del held[yid]
                    if x == a:
                        self.archived += 1
        return 204, None

    def archive(self, a: str, b: str, body: Any) -> tuple[int, dict[str, Any] | None]:
        """Remove every link between each ``from`` and its ``to`` ids: 204."""
        inputs = _inputs(body, MAX_WRITE)
        if isinstance(inputs, str):
            return 400, _error("VALIDATION_ERROR", inputs)
        for item in inputs:
            try:
                fid, tids = str(item["from"]["id"]), [str(t["id"]) for t in item["to"]]
            except (KeyError, TypeError):
                return 400, _error("VALIDATION_ERROR", "each input needs from.id and to[].id")
            for tid in tids:
                forward = self.links.get((a, b), {}).get(fid, {})
                backward = self.links.get((b, a), {}).get(tid, {})
                if forward.pop(tid, None) is not None:
                    self.archived += 1
                backward.pop(fid, None)
        return 204, None

    def search(self, crm_object: str, body: Any) -> tuple[int, dict[str, Any]]:
        """Records whose property is one of a filter's values (``EQ`` or ``IN``; domains and
        emails compare ignoring case), ``limit`` a page from ``after``; no page past HubSpot's
        10,000 results a query. Eventually consistent, as HubSpot's index: a record made less
        than ``search_lag`` seconds ago is not found yet."""
        self.searches += 1
        try:
            (group,) = body["filterGroups"]
            (flt,) = group["filters"]
            prop, operator = str(flt["propertyName"]), flt["operator"]
            values = [flt["value"]] if operator == "EQ" else list(flt["values"])
            limit = min(int(body.get("limit", 10)), MAX_SEARCH)
            after = int(body.get("after") or 0)
        except (KeyError, TypeError, ValueError):
            return 400, _error("VALIDATION_ERROR", "one filter group with one EQ or IN filter")
        if operator not in ("EQ", "IN") or len(values) > MAX_FILTER_VALUES:
            return 400, _error("VALIDATION_ERROR", f"at most {MAX_FILTER_VALUES} IN values")
        if after + limit > MAX_SEARCH_RESULTS:
            return 400, _error(
                "VALIDATION_ERROR",
                f"a search gives at most {MAX_SEARCH_RESULTS} results: narrow the filters",
            )
        wanted = {str(v).lower() for v in values}
        indexed_before = time.monotonic() - self.search_lag
        found = [
            (rid, props)
            for rid, props in self.crm.objects[crm_object].items()
            if str(props.get(prop, "")).lower() in wanted
            and self.crm.made_at.get((crm_object, rid), indexed_before) <= indexed_before
        ]
        shown = sorted(set(body.get("properties") or []) | {prop})
        results = [
            {
                "id": rid,
                "properties": {name: props.get(name) for name in shown},
                "archived": False,
            }
            for rid, props in found[after : after + limit]
        ]
        answer: dict[str, Any] = {"total": len(found), "results": results}
        if after + limit < min(len(found), MAX_SEARCH_RESULTS):
            answer["paging"] = {"next": {"after": str(after + limit)}}
        return 200, answer

    def _link(
        self, a: str, b: str, triples: list[tuple[str, str, int]], *, labeled: bool = False
    ) -> tuple[int, dict[str, Any]]:
        """Link each ``(from, to, type)``; ``labeled``: answer as ``batch/create`` does (201,
        each pair with its labels), else as ``batch/associate/default`` (200)."""
        records_a, records_b = self.crm.objects[a], self.crm.objects[b]
        missing = sorted(
            {f for f, _, _ in triples if f not in records_a}
            | {t for _, t, _ in triples if t not in records_b}
        )
        results = []
        for fid, tid, type_id in triples:
            if fid not in records_a or tid not in records_b:
                continue
            types = self.links.setdefault((a, b), {}).setdefault(fid, {}).setdefault(tid, set())
            if not types:
                self.added += 1
            if type_id not in types and type_id != self.types[(a, b)][0]:
                self.labels_added += 1
            types.add(type_id)
            reverse = (
                self.types[(b, a)][0] if type_id == self.types[(a, b)][0] else self.paired[type_id]
            )
            self.links.setdefault((b, a), {}).setdefault(tid, {}).setdefault(fid, set()).add(
                reverse
            )
            spec = self._type(a, b, type_id)
            results.append(
                {
                    "fromObjectTypeId": self.type_ids[a],
                    "fromObjectId": int(fid),
                    "toObjectTypeId": self.type_ids[b],
                    "toObjectId": int(tid),
                    "labels": [spec["label"]] if spec["label"] else [],
                }
                if labeled
                else {
                    "from": {"id": fid},
                    "to": {"id": tid},
                    "associationSpec": {
                        "associationCategory": spec["category"],
                        "associationTypeId": type_id,
                    },
                }
            )
        if not missing:
            return 201 if labeled else 200, {"status": "COMPLETE", "results": results}
        return 207, _partly(results, f"No such records: {', '.join(missing)}", ids=missing)

    def _type(self, a: str, b: str, type_id: int) -> dict[str, Any]:
        default, labeled = self.types.get((a, b), (0, {}))
        label, category = (None, _HUBSPOT) if type_id == default else labeled[type_id]
        return {"category": category, "typeId": type_id, "label": label}


def _partly(results: list[dict[str, Any]], message: str, **context: list[str]) -> dict[str, Any]:
    """A 207's body: the results, and the error naming the ids that had none."""
    error = {"status": "error", "category": "OBJECT_NOT_FOUND", "message": message}
    return {"status": "COMPLETE", "results": results, "errors": [{**error, "context": context}]}


def _inputs(body: Any, most: int) -> list[Any] | str:
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        return "Invalid input JSON: the body needs an inputs list"
    if len(body["inputs"]) > most:
        return f"Batch size {len(body['inputs'])} is above the limit of {most} inputs."
    return list(body["inputs"])


def _error(category: str, message: str) -> dict[str, Any]:
    return {"status": "error", "message": message, "category": category, "context": {}}
