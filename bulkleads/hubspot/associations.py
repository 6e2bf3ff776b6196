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

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import httpx

from ..ratelimit import Limit
from ..store import Bundle
from ..token import Token
from .http import HttpTarget, Outcome, answer_json, unreadable
from .options import crm_root

if TYPE_CHECKING:
    from .crm_batch import CrmV3Target

# Objects linked by a property no definition marks unique, found by search (as HubSpot's
# importer finds a company by its domain).
SEARCHED: Final = {"companies": "domain"}
SEARCH_PACE: Final = Limit(4, 1.0)  # HubSpot's search: about 5 a second, and no headers
READ_BATCH: Final = 1000  # HubSpot's cap for a batch read of associations
LINK_BATCH: Final = 100
SEARCH_BATCH: Final = 50  # values per search (an IN filter); a page holds 200 results
_PAGE: Final = 200


def associations_root(version: str) -> str:
    """The association API's root for an objects API version (v3 pairs with v4)."""
    return "/crm/v4/associations" if version == "v3" else crm_root("associations", version)


@dataclass(frozen=True)
class LinkTargets:
    """The endpoints of one object pair's links: how to find the records linked to (None:
    the file gives their ids), how to read the links there are, and how to link."""

    finder: CrmV3Target | SearchTarget | None
    reader: AssociationTarget
    writer: AssociationTarget


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
    ) -> None:
        super().__init__(base_url, token)
        self._use_bearer()
        self.batch_size = batch_size
        self._root = f"{associations_root(version)}/{from_object}/{to_object}"

    def build_read(self, bundles: Sequence[Bundle]) -> httpx.Request:
        return self._post("batch/read", {"inputs": [{"id": b.guid} for b in bundles]})

    def classify_read(
        self, response: httpx.Response, bundles: Sequence[Bundle]
    ) -> tuple[Outcome, dict[str, Outcome]]:
        """Each record read is ``ok`` with ``values`` ``{"to": [ids]}``; one the answer does
        not name has no links (HubSpot names such ids among its ``errors``)."""
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
        linked: dict[str, list[str]] = {b.guid: [] for b in bundles}
        for result in results:
            if not isinstance(result, dict) or not isinstance(result.get("from"), dict):
                continue
            source = str(result["from"].get("id"))
            if source in linked:
                linked[source] += [
                    str(to.get("toObjectId"))
                    for to in result.get("to") or []
                    if isinstance(to, dict)
                ]
        for source, targets in linked.items():
            found[source] = Outcome(
                "ok", response.status_code, None, response.headers, {"to": targets}
            )
        return outcome, found

    def build_link(self, bundles: Sequence[Bundle]) -> httpx.Request:
        inputs = [{"from": {"id": b.body["from"]}, "to": {"id": b.body["to"]}} for b in bundles]
        return self._post("batch/associate/default", {"inputs": inputs})

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
        made = {
            (str(r["from"].get("id")), str(r["to"].get("id")))
            for r in data.get("results") or []
            if isinstance(r, dict)
            and isinstance(r.get("from"), dict)
            and isinstance(r.get("to"), dict)
        }
        named: dict[str, str] = {}
        for error in data.get("errors") or []:
            if not isinstance(error, dict):
                continue
            message = self.redact(str(error.get("message") or error.get("category") or "refused"))
            context = error.get("context") if isinstance(error.get("context"), dict) else {}
            for ids in (context or {}).values():
                for rid in ids if isinstance(ids, list) else []:
                    named.setdefault(str(rid), message[:300])
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
        inputs = [{"from": {"id": b.body["from"]}, "to": [{"id": b.body["to"]}]} for b in bundles]
        return self._post("batch/archive", {"inputs": inputs})

    def classify_unlink(
        self, response: httpx.Response, bundles: Sequence[Bundle]
    ) -> tuple[Outcome, dict[str, Outcome]]:
        """HubSpot answers 204 and no body: any 2xx removed every link asked."""
        return self.outcome(response), {}

    def _post(self, path: str, body: dict[str, object]) -> httpx.Request:
        content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        return httpx.Request(
            "POST", f"{self.base_url}{self._root}/{path}", content=content, headers=self._headers
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
        content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        return httpx.Request(
            "POST", self.base_url + self._path, content=content, headers=self._headers
        )

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
