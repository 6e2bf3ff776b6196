"""HubSpot's legacy Leads v1 API: ``PUT /leads/v1/lead/{guid}``, one lead a request.

A bundle becomes a PUT with a JSON body of its fields plus ``"guid"`` (HubSpot wants the guid in
the URL and the body) and ``Content-Type: application/json`` (any other content type is accepted
and silently ignored by HubSpot). A lead is read back with ``GET`` on the same path, whose
documented answer is an array holding the lead. The token goes in the query (``access_token``,
as the API page shows) or, with ``--auth bearer``, in the Authorization header.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final
from urllib.parse import quote

import httpx

from bulkleads.bundle import Bundle
from bulkleads.fields import LEADS_V1, FieldRules, is_valid_guid
from bulkleads.hubspot.http import NOT_JSON, AuthMode, HttpTarget, Outcome, answer_json, unreadable
from bulkleads.hubspot.limits import Limit
from bulkleads.hubspot.options import ApiOptions
from bulkleads.hubspot.properties import Portal
from bulkleads.token import Token

# The limit the legacy API documented; the portal's own answer replaces it (see pacing.py).
DEFAULT_PACE: Final = Limit(10, 1.0)


@dataclass(frozen=True)
class LeadsV1:
    """The Leads v1 API as a run uses it."""

    auth: AuthMode = "query"
    name: ClassVar[str] = "leads-v1"
    default_pace: ClassVar[Limit] = DEFAULT_PACE
    per_request: ClassVar[int] = 1
    reads_portal: ClassVar[bool] = False  # nothing to read before planning
    creates: ClassVar[bool] = False  # Leads v1 updates leads it is given by guid

    @classmethod
    def from_options(cls, options: ApiOptions) -> LeadsV1:
        return cls(options.auth or "query")

    @classmethod
    def from_meta(cls, saved: Mapping[str, Any]) -> LeadsV1:
        """The API as :meth:`to_meta` saved it with a job."""
        return cls(saved.get("auth", "query"))

    def identity(self) -> dict[str, object]:
        """This API's part of what makes two runs one job."""
        return {"api": self.name, "object": None, "id_property": None, "date_fields": None}

    def to_meta(self) -> dict[str, object]:
        # The CRM keys keep their defaults, as job files have always had them.
        return {
            "auth": self.auth,
            "api": self.name,
            "object": "contacts",
            "batch_size": 100,
            "id_property": None,
            "date_fields": ["closedate"],
        }

    def rules(self, portal: Portal | None) -> FieldRules:
        return LEADS_V1

    def read_portal(
        self, base_url: str, token: Token, *, timeout: float, patience: float
    ) -> Portal | None:
        """Leads v1 has no property definitions to read."""
        return None

    def target(self, base_url: str, token: Token) -> LeadsV1Target:
        return LeadsV1Target(base_url, token, self.auth)

    def examples(self, base_url: str, bodies: Sequence[dict[str, object]]) -> list[str]:
        """The plan's example requests, the token shown as ``***``."""
        auth = "?access_token=***" if self.auth == "query" else "  (Authorization: Bearer ***)"
        return [
            f"PUT {base_url}/leads/v1/lead/{body['guid']}{auth} "
            f"{json.dumps(body, ensure_ascii=False)}"
            for body in bodies
        ]

    def describe(self, host: str) -> str:
        """The target column of ``bulkleads jobs``."""
        return f"{self.name} {host}"


class LeadsV1Target(HttpTarget):
    """``PUT /leads/v1/lead/{guid}``: one bundle per request."""

    name = "leads-v1"
    batch_size = 1

    def __init__(self, base_url: str, token: Token, auth: AuthMode = "query") -> None:
        super().__init__(base_url, token)
        self._auth = auth
        self._query = ""
        if auth == "bearer":
            self._use_bearer()
        else:
            self._query = "?access_token=" + quote(token.reveal(), safe="")

    def __repr__(self) -> str:
        return f"LeadsV1Target({self.base_url!r}, auth={self._auth!r})"

    def path(self, guid: str) -> str:
        if not is_valid_guid(guid):  # planning already refused it; never let one into a URL
            raise ValueError("invalid guid reached the request builder")
        return f"/leads/v1/lead/{quote(guid, safe='')}"

    def build(self, bundles: Sequence[Bundle]) -> httpx.Request:
        # A plain httpx.Request from prepared parts: client.build_request re-parses and merges
        # the URL and query on every call, a sixth of the client's CPU per request.
        (bundle,) = bundles
        body = {**bundle.body, "guid": bundle.guid}
        return httpx.Request(
            "PUT",
            self.base_url + self.path(bundle.guid) + self._query,
            content=json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode(),
            headers=self._headers,
        )

    def classify(
        self, response: httpx.Response, bundles: Sequence[Bundle]
    ) -> tuple[Outcome, dict[str, Outcome]]:
        """HubSpot answers a write with 204 and no body; a 2xx carrying something that is not
        JSON (a proxy's sign-in page, a cut-off body) did not come from the Leads API, so it
        confirms nothing: the lead is ``unconfirmed``, settled by reading it back."""
        outcome = self.outcome(response)
        if outcome.kind == "ok" and not _json_or_empty(response.content):
            status = response.status_code
            reason = (
                f"HubSpot answered {status} with {unreadable(response)} instead of its empty answer"
            )
            unsure = Outcome("unconfirmed", status, reason, response.headers)
            return outcome, {bundle.guid: unsure for bundle in bundles}
        return outcome, {}

    def build_read(self, bundles: Sequence[Bundle]) -> httpx.Request:
        (bundle,) = bundles
        url = self.base_url + self.path(bundle.guid) + self._query
        return httpx.Request("GET", url, headers=self._read_headers)

    def classify_read(
        self, response: httpx.Response, bundles: Sequence[Bundle]
    ) -> tuple[Outcome, dict[str, Outcome]]:
        """HubSpot documents the answer as an array holding the lead; a bare object is
        accepted too."""
        outcome = self.outcome(response)
        if outcome.kind != "ok":
            return outcome, {}
        data = answer_json(response.content)
        lead = data[0] if isinstance(data, list) and data else data
        if not isinstance(lead, dict):
            return Outcome("final", response.status_code, "the answer held no lead"), {}
        return Outcome("ok", response.status_code, None, response.headers, lead), {}


def _json_or_empty(body: bytes) -> bool:
    return not body.strip() or answer_json(body) is not NOT_JSON
