"""HubSpot's associations between CRM records, and the search that finds a record by a
property no definition marks unique (a company's ``domain``, as HubSpot's importer does).

``/crm/associations/2026-09/{from}/{to}/batch/...`` (``/crm/v4/associations`` on ``v3``):
``batch/read`` gives each record's links (the backup: a link already there is not sent),
``batch/associate/default`` links with HubSpot's default type, ``batch/archive`` removes links
(undo). Any 2xx is success (HubSpot has changed these codes before), but a link counts as made
only when the answer names it. Search (``POST /crm/objects/2026-09/{object}/search``) has its own
limit, about 5 requests a second, and sends no rate-limit headers: it is paced on its own.

The sender works on :class:`Bundle` items; here each is one piece of work keyed by ``guid``:
a link (``body`` ``{"from": id, "to": id}``), a record whose links to read (``guid`` its id),
or a value to find (``guid`` the value).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

import httpx

from bulkleads.bundle import Bundle
from bulkleads.errors import UsageError
from bulkleads.hubspot.http import HttpTarget, Outcome, answer_json, shorten, unreadable
from bulkleads.hubspot.limits import Limit
from bulkleads.hubspot.options import crm_root
from bulkleads.hubspot.reads import Transient, get
from bulkleads.token import Token

if TYPE_CHECKING:
    from bulkleads.hubspot.crm_batch import CrmV3Target

# Objects linked by a property no definition marks unique, found by search (as HubSpot's
# importer finds a company by its domain).
SEARCHED: Final = {"companies": "domain"}
SEARCH_PACE: Final = Limit(4, 1.0)  # HubSpot's search: about 5 a second, and no headers
READ_BATCH: Final = 1000  # HubSpot's cap for a batch read of associations
LINK_BATCH: Final = 100
SEARCH_BATCH: Final = 100  # values per search (an IN filter, at most 100); a page holds 200
_PAGE: Final = 200


def associations_root(version: str) -> str:
    """The association API's root for an objects API version (v3 pairs with v4)."""
    return "/crm/v4/associations" if version == "v3" else crm_root("associations", version)


@runtime_checkable
class Linker(Protocol):
    """An API whose records can be linked to others (``associate:OBJECT`` columns)."""

    def link_targets(
        self,
        base_url: str,
        token: Token,
        to_object: str,
        prop: str | None,
        kind: AssociationType | None = None,
    ) -> LinkTargets:
        """The endpoints of links from this API's records to ``to_object``'s."""
        ...

    def check_links(
        self,
        base_url: str,
        token: Token,
        by: dict[str, str],
        labels: dict[str, str],
        *,
        timeout: float,
        patience: float,
    ) -> tuple[int, dict[str, AssociationType]]:
        """Refuse link keys that cannot find records, resolve link labels to their types;
        the requests it made, and the types."""
        ...


@dataclass(frozen=True)
class LinkTargets:
    """The endpoints of one object pair's links: how to find the records linked to (None:
    the file gives their ids), how to read the links there are, and how to link."""

    finder: CrmV3Target | SearchTarget | None
    reader: AssociationTarget
    writer: AssociationTarget  # links (of the labeled type, when one is asked), and removes
    # the label alone from pairs that were there before the job
    remover: AssociationTarget  # removes whole pairs the job made


class AssociationTarget(HttpTarget):
    """Links from one object type to another: read, associate (default type), archive."""

    name = "associations"

    def __init__(
        self,
        base_url: str,
        token: Token,
        from_object: str,
        to_object: str,
        version: str,
        *,
        batch_size: int = LINK_BATCH,
        kind: AssociationType | None = None,
    ) -> None:
        """``kind``: a labeled type links are made with (``batch/create``); None: HubSpot's
        default type (``batch/associate/default``)."""
        super().__init__(base_url, token)
        self._use_bearer()
        self.batch_size = batch_size
        self.kind = kind
        self._root = f"{associations_root(version)}/{from_object}/{to_object}"

    def build_read(self, bundles: Sequence[Bundle]) -> httpx.Request:
        return self._post("batch/read", {"inputs": [{"id": b.guid} for b in bundles]})

    def classify_read(
        self, response: httpx.Response, bundles: Sequence[Bundle]
    ) -> tuple[Outcome, dict[str, Outcome]]:
        """Each record read is ``ok`` with ``values`` ``{"to": {to_id: [type ids]}}``; one the
        answer does not name has no links (HubSpot names such ids among its ``errors``)."""
        outcome = self.outcome(response)
        if outcome.kind != "ok":
            return outcome, {}
        data = answer_json(response.content)
        results = data.get("results") if isinstance(data, dict) else None
        if not isinstance(results, list):
            reason = (
                f"HubSpot answered {response.status_code} without the links "
                f"({unreadable(response)})"
            )
            return Outcome("retry", response.status_code, reason, response.headers), {}
        found: dict[str, Outcome] = {}
        linked: dict[str, dict[str, list[int]]] = {b.guid: {} for b in bundles}
        for result in results:
            if not isinstance(result, dict) or not isinstance(result.get("from"), dict):
                continue
            source = str(result["from"].get("id"))
            for to in result.get("to") or [] if source in linked else []:
                if isinstance(to, dict):
                    types = to.get("associationTypes") or []
                    linked[source][str(to.get("toObjectId"))] = [
                        t["typeId"] for t in types if isinstance(t, dict) and "typeId" in t
                    ]
        for source, targets in linked.items():
            found[source] = Outcome(
                "ok", response.status_code, None, response.headers, {"to": targets}
            )
        return outcome, found

    def build_link(self, bundles: Sequence[Bundle]) -> httpx.Request:
        inputs = [{"from": {"id": b.body["from"]}, "to": {"id": b.body["to"]}} for b in bundles]
        if self.kind is None:
            return self._post("batch/associate/default", {"inputs": inputs})
        types = [self.kind.spec()]
        return self._post("batch/create", {"inputs": [{**i, "types": types} for i in inputs]})

    def classify_link(
        self, response: httpx.Response, bundles: Sequence[Bundle]
    ) -> tuple[Outcome, dict[str, Outcome]]:
        """A link is made when the answer names its pair among ``results``; one whose record
        an error names failed; any other is ``unconfirmed`` (sent again: linking is
        idempotent)."""
        outcome = self.outcome(response)
        if outcome.kind != "ok":
            return outcome, {}
        status, headers = response.status_code, response.headers
        data = answer_json(response.content)
        data = data if isinstance(data, dict) else {}
        made = {_pair(r) for r in data.get("results") or [] if isinstance(r, dict)}
        named: dict[str, str] = {}
        for error in data.get("errors") or []:
            if not isinstance(error, dict):
                continue
            message = self.redact(str(error.get("message") or error.get("category") or "refused"))
            context = error.get("context") if isinstance(error.get("context"), dict) else {}
            for ids in (context or {}).values():
                for rid in ids if isinstance(ids, list) else []:
                    named.setdefault(str(rid), shorten(message))
        others: dict[str, Outcome] = {}
        for bundle in bundles:
            pair = (str(bundle.body["from"]), str(bundle.body["to"]))
            if pair in made:
                continue
            reason = named.get(pair[0]) or named.get(pair[1])
            if reason is not None:
                others[bundle.guid] = Outcome("final", status, reason, headers)
            else:
                others[bundle.guid] = Outcome(
                    "unconfirmed",
                    status,
                    f"HubSpot answered {status} without naming this link among those made",
                    headers,
                )
        return Outcome("ok", status, None, headers), others

    def build_unlink(self, bundles: Sequence[Bundle]) -> httpx.Request:
        """Remove each pair (``batch/archive``); with a labeled ``kind``, only that label
        (``batch/labels/archive``): the pair was there before the job, and stays."""
        if self.kind is not None:
            inputs = [
                {
                    "from": {"id": b.body["from"]},
                    "to": {"id": b.body["to"]},
                    "types": [self.kind.spec()],
                }
                for b in bundles
            ]
            return self._post("batch/labels/archive", {"inputs": inputs})
        inputs = [{"from": {"id": b.body["from"]}, "to": [{"id": b.body["to"]}]} for b in bundles]
        return self._post("batch/archive", {"inputs": inputs})

    def classify_unlink(
        self, response: httpx.Response, bundles: Sequence[Bundle]
    ) -> tuple[Outcome, dict[str, Outcome]]:
        """HubSpot answers 204 and no body: any 2xx removed every link asked."""
        return self.outcome(response), {}

    def _post(self, path: str, body: dict[str, object]) -> httpx.Request:
        return self.post_json(f"{self._root}/{path}", body)


def _pair(result: dict[str, object]) -> tuple[str, str]:
    """The pair a write's result names: ``{from: {id}, to: {id}}`` (default associations) or
    ``{fromObjectId, toObjectId}`` (``batch/create``)."""
    source, target = result.get("from"), result.get("to")
    if isinstance(source, dict) and isinstance(target, dict):
        return str(source.get("id")), str(target.get("id"))
    return str(result.get("fromObjectId")), str(result.get("toObjectId"))


@dataclass(frozen=True)
class AssociationType:
    """A labeled association type, as the labels endpoint lists it (by id, never by text)."""

    type_id: int
    category: str
    label: str

    def spec(self) -> dict[str, object]:
        return {"associationCategory": self.category, "associationTypeId": self.type_id}

    def to_meta(self) -> list[object]:
        return [self.type_id, self.category, self.label]

    @classmethod
    def from_meta(cls, item: object) -> AssociationType | None:
        if isinstance(item, list) and len(item) == 3:
            return cls(int(item[0]), str(item[1]), str(item[2]))
        return None


def read_labels(
    base_url: str,
    token: Token,
    pair: tuple[str, str],
    *,
    version: str,
    timeout: float,
    patience: float,
    named: tuple[str, str] | None = None,
) -> list[dict[str, Any]] | None:
    """The association types from ``pair[0]`` to ``pair[1]`` (addresses: a custom object's
    type id), as the labels endpoint lists them; None when HubSpot answers that the pair has
    none (a 4xx: the portal does not associate these objects). ``named``: the pair as the
    user names it, for messages."""
    shown = named or pair
    url = f"{base_url}{associations_root(version)}/{pair[0]}/{pair[1]}/labels"
    try:
        status, body = get(url, token, timeout=timeout, patience=patience)
    except (Transient, httpx.HTTPError) as exc:
        raise UsageError(
            f"could not read the association labels of {shown[0]} to {shown[1]} "
            f"({token.redact(str(exc)) or type(exc).__name__}); try again"
        ) from None
    if status in (400, 404):
        return None
    data = answer_json(body)
    results = data.get("results") if isinstance(data, dict) else None
    if status != 200 or not isinstance(results, list):
        raise UsageError(
            f"HubSpot answered {status} for the association labels of {shown[0]} to {shown[1]}"
        )
    return [r for r in results if isinstance(r, dict)]


def fetch_type(
    base_url: str,
    token: Token,
    pair: tuple[str, str],
    label: str,
    *,
    version: str,
    timeout: float,
    patience: float,
    named: tuple[str, str] | None = None,
) -> AssociationType:
    """The association type from ``pair[0]`` to ``pair[1]`` labeled ``label`` (ignoring
    case), read once a run from the labels endpoint; a label the portal lacks stops the run
    naming the ones it has."""
    shown = named or pair
    results = read_labels(
        base_url, token, pair, version=version, timeout=timeout, patience=patience, named=named
    )
    labeled = {
        str(r["label"]): AssociationType(int(r["typeId"]), str(r["category"]), str(r["label"]))
        for r in results or []
        if r.get("label") and "typeId" in r and "category" in r
    }
    for name, kind in labeled.items():
        if name.casefold() == label.strip().casefold():
            return kind
    close = difflib.get_close_matches(label, labeled, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise UsageError(
        f"--association-label {shown[1]}={label!r}: no such label from {shown[0]} to "
        f"{shown[1]}{hint}; the portal's labels: {', '.join(map(repr, sorted(labeled))) or 'none'}"
    )


class SearchTarget(HttpTarget):
    """Records of one object whose ``prop`` is one of the batch's values (compared ignoring
    case, as HubSpot compares domains): each value is ``ok`` with the one record's id, ``ok``
    without one (nothing has it), or ``final`` when several records hold it (naming them)."""

    name = "search"

    def __init__(
        self, base_url: str, token: Token, crm_object: str, prop: str, version: str
    ) -> None:
        super().__init__(base_url, token)
        self._use_bearer()
        self.batch_size = SEARCH_BATCH
        self.object = crm_object
        self._prop = prop
        self._path = f"{crm_root('objects', version)}/{crm_object}/search"

    def build(self, bundles: Sequence[Bundle]) -> httpx.Request:
        body = {
            "filterGroups": [
                {
                    "filters": [
                        {
                            "propertyName": self._prop,
                            "operator": "IN",
                            "values": [b.guid for b in bundles],
                        }
                    ]
                }
            ],
            "properties": [self._prop],
            "limit": _PAGE,
        }
        return self.post_json(self._path, body)

    def classify(
        self, response: httpx.Response, bundles: Sequence[Bundle]
    ) -> tuple[Outcome, dict[str, Outcome]]:
        outcome = self.outcome(response)
        if outcome.kind != "ok":
            return outcome, {}
        status, headers = response.status_code, response.headers
        data = answer_json(response.content)
        results = data.get("results") if isinstance(data, dict) else None
        total = data.get("total") if isinstance(data, dict) else None
        if not isinstance(results, list) or (isinstance(total, int) and total > len(results)):
            reason = (
                f"HubSpot's search answer could not say which {self.object} hold these "
                f"({unreadable(response)})"
            )
            return Outcome("final", status, reason, headers), {}
        holders: dict[str, list[str]] = {b.guid: [] for b in bundles}
        for result in results:
            if isinstance(result, dict) and isinstance(result.get("properties"), dict):
                value = str(result["properties"].get(self._prop) or "").lower()
                if value in holders:
                    holders[value].append(str(result.get("id")))
        found: dict[str, Outcome] = {}
        for value, ids in holders.items():
            if len(ids) > 1:
                reason = (
                    f"{len(ids)} {self.object} have {self._prop} {value} "
                    f"({', '.join(sorted(ids))}): link by id instead"
                )
                found[value] = Outcome("final", status, reason, headers)
            else:
                found[value] = Outcome("ok", status, None, headers, {}, ids[0] if ids else None)
        return outcome, found
