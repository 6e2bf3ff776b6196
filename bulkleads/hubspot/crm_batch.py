"""The CRM objects batch requests: ``POST /crm/objects/2026-09/{object}/batch/update`` (and
``read``, ``upsert``, ``archive``), up to 100 records a request.

A request carries up to ``--batch-size`` bundles as
``{"inputs": [{"id", "properties", "objectWriteTraceId"}]}`` with bearer auth. The answer is
mapped back to each bundle:

- 200: every record updated;
- 207 Multi-Status: the records named by an error (``context.ids``, or the
  ``objectWriteTraceId`` we set to the record's key) failed with its message; the rest updated;
- 400 for a batch of several: HubSpot refused the whole request, perhaps for one record. Records
  the error names (by id, by sending the very value it quotes as invalid, or by setting a
  property it refuses as such) fail; the sender sends the others again (in halves when none is
  named), so one bad value cannot fail 99 good ones;
- 401/403, 429 and 5xx mean what they mean for Leads v1.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final, NamedTuple

import httpx

from bulkleads.bundle import Bundle
from bulkleads.hubspot.http import (
    HttpTarget,
    Outcome,
    answer_json,
    findings,
    readable,
    shorten,
    unreadable,
)
from bulkleads.hubspot.options import VERSIONS, crm_root
from bulkleads.hubspot.pipelines import PIPELINE_PROPERTIES
from bulkleads.token import Token

MAX_BATCH: Final = 100


class CrmV3Target(HttpTarget):
    """Batch updates of one CRM object type."""

    name = "crm-v3"

    def __init__(
        self,
        base_url: str,
        token: Token,
        crm_object: str,
        *,
        batch_size: int = MAX_BATCH,
        id_property: str | None = None,
        version: str = VERSIONS[0],
    ) -> None:
        super().__init__(base_url, token)
        self._use_bearer()
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch size must be 1 to {MAX_BATCH}")
        self.object = crm_object
        self.batch_size = batch_size
        self._id_property = id_property
        root = f"{crm_root('objects', version)}/{crm_object}"
        self.path = f"{root}/batch/update"
        self.read_path = f"{root}/batch/read"
        self.upsert_path = f"{root}/batch/upsert"
        self.archive_path = f"{root}/batch/archive"

    def __repr__(self) -> str:
        return f"CrmV3Target({self.base_url!r}, {self.object!r}, batch_size={self.batch_size})"

    def _key_of(self, props: dict[str, object]) -> str | None:
        """A result's key: its match property's value, as the plan normalised keys (HubSpot
        compares emails case-insensitively); None when it has none."""
        value = props.get(self._id_property) if self._id_property else None
        if value is None:
            return None
        return str(value).lower() if self._id_property == "email" else str(value)

    def body(self, bundles: Sequence[Bundle]) -> dict[str, object]:
        """The JSON body; the trace id is the record's key, so an error maps back to it.
        A record matched by a unique property goes by the id reading found (HubSpot's update
        by ``idProperty`` is refused for some, email among them); unread (--no-backup), by
        the property."""
        inputs = []
        for bundle in bundles:
            item: dict[str, object] = {
                "id": bundle.record_id or bundle.guid,
                "properties": bundle.body,
                "objectWriteTraceId": bundle.guid,
            }
            if self._id_property and bundle.record_id is None:
                item["idProperty"] = self._id_property
            inputs.append(item)
        return {"inputs": inputs}

    def build(self, bundles: Sequence[Bundle]) -> httpx.Request:
        return self.post_json(self.path, self.body(bundles))

    def classify(
        self, response: httpx.Response, bundles: Sequence[Bundle]
    ) -> tuple[Outcome, dict[str, Outcome]]:
        outcome = self.outcome(response)
        status = response.status_code
        keys = _write_keys(bundles)
        if outcome.kind == "ok":  # 200, 207, or any other 2xx
            return self._confirmed(response, bundles)
        if status == 400 and len(bundles) > 1:
            data = _json_object(response)
            named = self._record_errors([data], keys, status)
            refusals = _refusals(data)
            for bundle in bundles:
                if any(refusal.refuses(bundle.body) for refusal in refusals):
                    named[bundle.guid] = Outcome("final", status, outcome.reason)
            return Outcome("split", status, outcome.reason), named
        return outcome, {}

    def build_read(self, bundles: Sequence[Bundle]) -> httpx.Request:
        """``batch/read`` of the properties the bundles change (and undo expects)."""
        names = {name for b in bundles for name in (*b.body, *(b.expect or ()))}
        # a stage is checked against the record's own pipeline: read it beside the stage
        if self.object in PIPELINE_PROPERTIES:
            pipeline, stage = PIPELINE_PROPERTIES[self.object]
            if stage in names:
                names.add(pipeline)
        if self._id_property:
            names.add(self._id_property)  # results carry the record id: map them back by this
        body: dict[str, object] = {
            "inputs": [{"id": b.guid} for b in bundles],
            "properties": sorted(names),
            "propertiesWithHistory": [],
        }
        if self._id_property:
            body["idProperty"] = self._id_property
        return self.post_json(self.read_path, body)

    def classify_read(
        self, response: httpx.Response, bundles: Sequence[Bundle]
    ) -> tuple[Outcome, dict[str, Outcome]]:
        outcome = self.outcome(response)
        if outcome.kind != "ok":
            return outcome, {}
        keys = {b.guid for b in bundles}
        data = _json_object(response)
        errors = data.get("errors")
        # a key no record has is not an error of the read: it is ``not_found`` (no values)
        found = self._record_errors(
            [e for e in errors if not _not_found(e)] if isinstance(errors, list) else None,
            keys,
            response.status_code,
        )
        results = data.get("results")
        for result in results if isinstance(results, list) else []:
            if not isinstance(result, dict) or not isinstance(result.get("properties"), dict):
                continue
            props: dict[str, object] = result["properties"]
            record_id = str(result.get("id"))
            key = self._key_of(props) if self._id_property else record_id
            if key in keys:
                found[key] = Outcome("ok", response.status_code, None, None, props, record_id)
        return outcome, found

    def _confirmed(
        self, response: httpx.Response, bundles: Sequence[Bundle]
    ) -> tuple[Outcome, dict[str, Outcome]]:
        """A 2xx answer counts a record updated only when it says so: the record is among its
        ``results`` (by id; by count when updating by a unique property, whose results carry
        HubSpot's ids). Records its ``errors`` name failed; any other is ``unconfirmed``, and so
        is every record of an answer that is not a JSON object with ``results`` (a truncated
        body, an HTML page from a proxy, nothing at all)."""
        status = response.status_code
        keys = _write_keys(bundles)
        data = _json_object(response)
        named = self._record_errors(data.get("errors"), keys, status)
        results = data.get("results")
        if not isinstance(results, list):
            reason = (
                f"HubSpot answered {status} without saying which records it updated "
                f"({unreadable(response)})"
            )
            unsure = Outcome("unconfirmed", status, reason)
            return Outcome("ok", status), {
                **{k: unsure for k in keys if k not in named},
                **named,
            }
        rest = [b for b in bundles if b.guid not in named]
        if any(b.record_id is None for b in rest) and self._id_property:
            # written by the property: results carry ids we never saw, so count them
            confirmed = {b.guid for b in rest} if len(results) >= len(rest) else set()
        else:
            ids = {str(r.get("id")) for r in results if isinstance(r, dict)}
            confirmed = {b.guid for b in rest if (b.record_id or b.guid) in ids}
        reason = f"HubSpot answered {status} but did not name this record among those updated"
        for bundle in rest:
            if bundle.guid not in confirmed:
                named[bundle.guid] = Outcome("unconfirmed", status, reason)
        return Outcome("ok", status), named

    def build_create(self, bundles: Sequence[Bundle]) -> httpx.Request:
        """``batch/upsert`` by the match property: a record no one has made since the read is
        created with the key; one that appeared meanwhile (another client, or this job's own
        request whose answer a crash lost) is updated, never made twice."""
        inputs = [
            {
                "id": bundle.guid,
                "idProperty": self._id_property,
                "properties": bundle.body,
                "objectWriteTraceId": bundle.guid,
            }
            for bundle in bundles
        ]
        return self.post_json(self.upsert_path, {"inputs": inputs})

    def classify_create(
        self, response: httpx.Response, bundles: Sequence[Bundle]
    ) -> tuple[Outcome, dict[str, Outcome]]:
        """Each record the answer names by its key is done, with the id HubSpot gave it; one
        it does not name is ``unconfirmed`` (never created in the report)."""
        outcome = self.outcome(response)
        if outcome.kind != "ok":
            return outcome, {}
        status = response.status_code
        keys = {b.guid for b in bundles}
        data = _json_object(response)
        named = self._record_errors(data.get("errors"), keys, status)
        results = data.get("results")
        for result in results if isinstance(results, list) else []:
            if isinstance(result, dict) and isinstance(result.get("properties"), dict):
                key = self._key_of(result["properties"])
                if key in keys and key not in named:
                    named[key] = Outcome("ok", status, record_id=str(result.get("id")))
        reason = f"HubSpot answered {status} without naming this record among those written"
        for key in keys - named.keys():
            named[key] = Outcome("unconfirmed", status, reason)
        return Outcome("ok", status), named

    def build_archive(self, bundles: Sequence[Bundle]) -> httpx.Request:
        """``batch/archive`` of the records a job created (its undo)."""
        return self.post_json(
            self.archive_path, {"inputs": [{"id": b.record_id or b.guid} for b in bundles]}
        )

    def classify_archive(
        self, response: httpx.Response, bundles: Sequence[Bundle]
    ) -> tuple[Outcome, dict[str, Outcome]]:
        """HubSpot answers 204 and names nothing: any 2xx archives the whole batch."""
        return self.outcome(response), {}

    def _record_errors(
        self, errors: object, keys: set[str] | dict[str, str], status: int
    ) -> dict[str, Outcome]:
        """Per-record failures named in a list of HubSpot error objects."""
        failed: dict[str, Outcome] = {}
        for error in errors if isinstance(errors, list) else []:
            if not isinstance(error, dict):
                continue
            message = shorten(self.redact(readable(str(error.get("message") or "refused"))))
            category = error.get("category")
            reason = f"{category}: {message}" if category else message
            for name in _named_keys(error):
                # an error names a record by our trace id (its key) or by its id
                key = keys.get(name) if isinstance(keys, dict) else name if name in keys else None
                if key is not None:
                    failed[key] = Outcome("final", status, reason)
        return failed


def _not_found(error: object) -> bool:
    return isinstance(error, dict) and error.get("category") == "OBJECT_NOT_FOUND"


def _write_keys(bundles: Sequence[Bundle]) -> dict[str, str]:
    """How a write's answer may name each bundle (its key, or the record id it was sent by),
    to the bundle's key."""
    keys = {b.guid: b.guid for b in bundles}
    keys.update({b.record_id: b.guid for b in bundles if b.record_id is not None})
    return keys


def _json_object(response: httpx.Response) -> dict[str, object]:
    """The answer's JSON object, or an empty one when the body is not one."""
    data = answer_json(response.content)
    return data if isinstance(data, dict) else {}


# HubSpot's codes for a property refused whatever its value: every record setting it fails.
_PROPERTY_REFUSED: Final = frozenset({"PROPERTY_DOESNT_EXIST", "READ_ONLY_VALUE"})
# A refused value at the start of HubSpot's message: ``'vip' was not one of the allowed
# options``, ``vip was not one of ...``, ``"12k" is not a valid number``. The options HubSpot
# lists after it are allowed values, never refused ones, so only the start is read.
_REFUSED_VALUE: Final = re.compile(
    r"""^\s*(?:'(?P<single>[^']*)'|"(?P<double>[^"]*)"|(?P<bare>\S(?:.*?\S)?))"""
    r"\s+(?:was|is) not\b",
    re.DOTALL,
)


class Refusal(NamedTuple):
    """One property HubSpot's 400 refused, and the value it quoted (None: any value of it,
    for a property refused as such)."""

    name: str
    value: str | None

    def refuses(self, body: dict[str, object]) -> bool:
        """Whether a record sending ``body`` is the one refused: it sets the property to the
        quoted value (one of its ``;`` values, for a checkbox), or any value when the property
        itself was refused."""
        if self.name not in body:
            return False
        if self.value is None:
            return True
        sent = str(body[self.name])
        return sent == self.value or self.value in sent.split(";")


def _refusals(data: dict[str, object]) -> list[Refusal]:
    """What a VALIDATION_ERROR refuses. HubSpot lists its findings as a JSON array inside its
    message (``{"name", "error", "message"}`` items). A value error names a record only by
    the value it quotes: one refused ``vip`` must not fail the 99 records of its batch that
    send ``customer``. A finding that quotes no value names nobody: the batch is split, as for
    an error naming no record."""
    refusals: list[Refusal] = []
    message = data.get("message")
    for detail in findings(message) if isinstance(message, str) else ():
        name, said = detail.get("name"), detail.get("message")
        if not isinstance(name, str):
            continue
        if detail.get("error") in _PROPERTY_REFUSED:
            refusals.append(Refusal(name, None))
            continue
        match = _REFUSED_VALUE.match(said) if isinstance(said, str) else None
        if match is not None:
            quoted = (match.group(g) for g in ("single", "double", "bare"))
            refusals.append(Refusal(name, next(v for v in quoted if v is not None)))
    return refusals


def _named_keys(error: dict[str, object]) -> set[str]:
    """Record keys an error names: its ``objectWriteTraceId`` and its ``context`` lists."""
    named: set[str] = set()
    trace = error.get("objectWriteTraceId")
    if isinstance(trace, str):
        named.add(trace)
    context = error.get("context")
    if isinstance(context, dict):
        for values in context.values():
            if isinstance(values, list):
                named.update(str(v) for v in values)
    return named
