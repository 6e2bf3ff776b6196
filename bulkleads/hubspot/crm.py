"""HubSpot's CRM objects API as a run uses it: one object type, by id or a unique property.

HubSpot names its API versions by month since March 2026; the numeric ``/crm/v3/...`` paths are
legacy and unsupported from September 2027. ``--api-version`` picks one (:data:`VERSIONS`, the
newest first and the default); the batch bodies and answers are the same in both. Live HubSpot
portals take updates here (Leads v1 was retired). The requests and how their answers map back
to each record are :mod:`.crm_batch`'s.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, ClassVar, Final

from bulkleads.errors import UsageError
from bulkleads.fields import FieldRules
from bulkleads.hubspot.associations import (
    READ_BATCH,
    SEARCHED,
    AssociationTarget,
    AssociationType,
    LinkTargets,
    SearchTarget,
    fetch_type,
)
from bulkleads.hubspot.crm_batch import MAX_BATCH, CrmV3Target
from bulkleads.hubspot.crm_fields import crm_v3_rules
from bulkleads.hubspot.http import AuthMode
from bulkleads.hubspot.limits import Limit
from bulkleads.hubspot.objects import STANDARD_OBJECTS, CustomObject, fetch_custom_objects
from bulkleads.hubspot.objects import resolve as resolve_object
from bulkleads.hubspot.options import VERSIONS, ApiOptions, crm_root
from bulkleads.hubspot.pipelines import PIPELINE_PROPERTIES, Pipeline, fetch_pipelines
from bulkleads.hubspot.properties import Portal
from bulkleads.hubspot.properties import fetch as fetch_properties
from bulkleads.token import Token

# What HubSpot's guides say a record needs to be created, by object (developers.hubspot.com,
# api-reference/2026-03/crm/objects/*/guide): a deal "should include dealname, dealstage"; a
# lead "must have" hs_lead_name and "must be associated with an existing contact", which a
# file of properties cannot give (associations: not built), so leads are never created. The
# properties API does not mark these, so they are listed here. Contacts and companies need
# nothing beyond the match property, which an upsert sets.
REQUIRED_TO_CREATE: Final[dict[str, tuple[tuple[str, ...], ...]]] = {
    "deals": (("dealname", "dealstage"),),
    # a ticket "requires" subject, pipeline and stage; a line item a product, or a name and
    # a price (HubSpot's tickets and line items guides)
    "tickets": (("subject", "hs_pipeline", "hs_pipeline_stage"),),
    "line_items": (("hs_product_id",), ("name", "price")),
}
# Free/Starter apps get 100 per 10 s; the portal's own answer replaces it (see pacing.py).
DEFAULT_PACE: Final = Limit(100, 10.0)
# The objects an ``associate:OBJECT`` column may link a record to (HubSpot-defined types).
ASSOCIABLE: Final[dict[str, tuple[str, ...]]] = {
    "contacts": ("companies", "deals", "tickets"),
    "companies": ("contacts", "deals", "tickets"),
    "deals": ("contacts", "companies", "tickets", "line_items"),
    "tickets": ("contacts", "companies", "deals"),
    "line_items": ("deals",),
}


@dataclass(frozen=True)
class Crm:
    """The CRM objects API as a run uses it: one object type, by id or a unique property."""

    object_type: str = "contacts"  # a standard object's name, or a custom one's type id
    batch_size: int = MAX_BATCH
    id_property: str | None = None
    date_fields: tuple[str, ...] = ("closedate",)
    version: str = VERSIONS[0]
    creates: bool = False  # --create: a key no record has makes one (by upsert)
    custom: CustomObject | None = None  # a custom object's schema, once resolved
    name: ClassVar[str] = "crm-v3"
    default_pace: ClassVar[Limit] = DEFAULT_PACE
    auth: ClassVar[AuthMode] = "bearer"
    reads_portal: ClassVar[bool] = True  # its property definitions, before planning

    @classmethod
    def from_options(cls, options: ApiOptions) -> Crm:
        if options.auth == "query":
            raise UsageError(
                "CRM v3 takes the token in the Authorization header; drop --auth query"
            )
        if options.version not in VERSIONS:
            raise UsageError(
                f"unknown --api-version {options.version!r}; use {' or '.join(VERSIONS)}"
            )
        if options.create and options.id_property is None:
            raise UsageError(
                "--create needs --match PROPERTY: a record created without a key cannot be "
                "found again after a crash, and sending it again would make a second one; give "
                "the file a unique property (e.g. an external id whose definition has "
                "hasUniqueValue) and match by it"
            )
        if options.create and options.object == "leads":
            raise UsageError(
                "--create --object leads: HubSpot creates a lead only with an association to "
                "an existing contact, which bulkleads cannot send yet; create leads in HubSpot, "
                "then update them here"
            )
        return cls(
            options.object,
            options.batch_size,
            options.id_property,
            options.date_fields,
            options.version,
            options.create,
        )

    @classmethod
    def from_meta(cls, saved: Mapping[str, Any]) -> Crm:
        """The API as :meth:`to_meta` saved it with a job."""
        custom = saved.get("custom")
        return cls(
            saved.get("object", "contacts"),
            int(saved.get("batch_size", MAX_BATCH)),
            saved.get("id_property"),
            tuple(saved.get("date_fields", ("closedate",))),
            str(saved.get("api_version", "v3")),  # a job that names no version used v3
            bool(saved.get("create", False)),
            CustomObject(
                str(custom["object_type_id"]),
                str(custom["name"]),
                str(custom["fully_qualified_name"]),
                str(custom["singular"]),
                tuple(custom["required"]),
                tuple(custom.get("links", ())),
            )
            if isinstance(custom, Mapping)
            else None,
        )

    @property
    def needs_resolving(self) -> bool:
        """A name no standard object has, not yet looked up in the portal's schemas."""
        return self.custom is None and self.object_type not in STANDARD_OBJECTS

    def resolve(self, base_url: str, token: Token, *, timeout: float, patience: float) -> Crm:
        """This API with ``--object`` looked up among the portal's custom objects."""
        customs = fetch_custom_objects(
            base_url, token, version=self.version, timeout=timeout, patience=patience
        )
        custom = resolve_object(self.object_type, customs)
        return replace(self, object_type=custom.object_type_id, custom=custom)

    @property
    def per_request(self) -> int:
        return self.batch_size

    def identity(self) -> dict[str, object]:
        """This API's part of what makes two runs one job."""
        identity: dict[str, object] = {
            "api": self.name,
            "object": self.object_type,
            "id_property": self.id_property,
            "date_fields": sorted(self.date_fields),
        }
        if self.version != "v3":  # v3 jobs keep the ids they had when v3 was the only root
            identity["api_version"] = self.version
        if self.creates:
            identity["create"] = True
        return identity

    def to_meta(self) -> dict[str, object]:
        return {
            "auth": self.auth,
            "api": self.name,
            "object": self.object_type,
            "batch_size": self.batch_size,
            "id_property": self.id_property,
            "date_fields": list(self.date_fields),
            "api_version": self.version,
            "create": self.creates,
            "custom": asdict(self.custom) if self.custom is not None else None,
        }

    def rules(self, portal: Portal | None) -> FieldRules:
        """The portal's own property rules when they were read, else HubSpot's defaults."""
        dates = frozenset(self.date_fields)
        if portal is not None:
            rules = portal.rules(self.id_property, dates)
        else:
            rules = crm_v3_rules(dates, self.id_property, self.object_type)
        rules = replace(rules, associable=ASSOCIABLE.get(self.object_type, ()))
        if self.custom is not None:
            rules = replace(rules, noun=self.custom.singular, associable=self.custom.links)
        if self.creates:
            needs = (self.custom.required,) if self.custom and self.custom.required else ()
            required = REQUIRED_TO_CREATE.get(self.object_type, needs)
            # the match property is the key, which the upsert sets
            sets = tuple(tuple(n for n in s if n != self.id_property) for s in required)
            rules = replace(rules, required=tuple(s for s in sets if s) if all(sets) else ())
        return rules

    def read_portal(
        self, base_url: str, token: Token, *, timeout: float, patience: float
    ) -> Portal | None:
        """The object type's property definitions, once per run."""
        return fetch_properties(
            base_url,
            token,
            self.object_type,
            timeout=timeout,
            patience=patience,
            version=self.version,
        )

    def read_pipelines(
        self, base_url: str, token: Token, *, timeout: float, patience: float
    ) -> tuple[Pipeline, ...]:
        """Deals' and tickets' pipelines with their stages (none for other objects)."""
        if self.object_type not in PIPELINE_PROPERTIES:
            return ()
        return fetch_pipelines(
            base_url,
            token,
            self.object_type,
            version=self.version,
            timeout=timeout,
            patience=patience,
        )

    def target(self, base_url: str, token: Token) -> CrmV3Target:
        return CrmV3Target(
            base_url,
            token,
            self.object_type,
            batch_size=self.batch_size,
            id_property=self.id_property,
            version=self.version,
        )

    def examples(self, base_url: str, bodies: Sequence[dict[str, object]]) -> list[str]:
        """The plan's example request, the token shown as ``***``."""
        inputs = [
            {"id": body["guid"], "properties": {k: v for k, v in body.items() if k != "guid"}}
            for body in bodies
        ]
        if not inputs:
            return []
        root = f"{base_url}{crm_root('objects', self.version)}/{self.object_type}"
        if self.id_property:  # read by the key first: ids and backup; then write by id
            read = {
                "idProperty": self.id_property,
                "inputs": [{"id": item["id"]} for item in inputs],
                "properties": sorted({k for body in bodies for k in body if k != "guid"}),
            }
            return [
                f"POST {root}/batch/read  (Authorization: Bearer ***) "
                f"{json.dumps(read, ensure_ascii=False)}",
                f"then POST {root}/batch/update by the ids it finds"
                + (", and batch/upsert by the key for those it does not" if self.creates else ""),
            ]
        return [
            f"POST {root}/batch/update  (Authorization: Bearer ***) "
            f"{json.dumps({'inputs': inputs}, ensure_ascii=False)}"
        ]

    def link_targets(
        self,
        base_url: str,
        token: Token,
        to_object: str,
        prop: str | None,
        kind: AssociationType | None = None,
    ) -> LinkTargets:
        """The endpoints of links to ``to_object``, whose records the file names by ``prop``
        (None: by id), made with the labeled type ``kind`` (None: HubSpot's default)."""
        finder: CrmV3Target | SearchTarget | None = None
        if prop is not None and SEARCHED.get(to_object) == prop:
            finder = SearchTarget(base_url, token, to_object, prop, self.version)
        elif prop is not None:
            finder = CrmV3Target(base_url, token, to_object, id_property=prop, version=self.version)
        pair = (base_url, token, self.object_type, to_object, self.version)
        return LinkTargets(
            finder,
            AssociationTarget(*pair, batch_size=READ_BATCH),
            AssociationTarget(*pair, kind=kind),
            AssociationTarget(*pair),
        )

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
        """Before the first request that writes: refuse a ``--associate-by`` property that
        cannot find records (one the object's definitions do not mark unique; a company's
        domain is searched instead), and resolve each ``--association-label`` to its type id
        once. Returns the requests made and the types."""
        made = 0
        for obj, prop in sorted(by.items()):
            if SEARCHED.get(obj) == prop:
                continue
            portal = fetch_properties(
                base_url, token, obj, timeout=timeout, patience=patience, version=self.version
            )
            made += 1
            if portal is not None:
                portal.check_match(prop, f"--associate-by {obj}=")
        kinds = {
            obj: fetch_type(
                base_url,
                token,
                (self.object_type, obj),
                label,
                version=self.version,
                timeout=timeout,
                patience=patience,
            )
            for obj, label in sorted(labels.items())
        }
        return made + len(kinds), kinds

    def describe(self, host: str) -> str:
        """The target column of ``bulkleads jobs``."""
        shown = self.custom.name if self.custom is not None else self.object_type
        return f"{self.name} {shown} {host}"
