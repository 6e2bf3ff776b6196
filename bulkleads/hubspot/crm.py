"""HubSpot's CRM objects API as a run uses it: one object type, by id or a unique property.

HubSpot names its API versions by month since March 2026; the numeric ``/crm/v3/...`` paths are
legacy and unsupported from September 2027. ``--api-version`` picks one (:data:`VERSIONS`, the
newest first and the default); the batch bodies and answers are the same in both. Live HubSpot
portals take updates here (Leads v1 was retired). The requests and how their answers map back
to each record are :mod:`.crm_batch`'s.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
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
    read_labels,
)
from bulkleads.hubspot.crm_batch import MAX_BATCH, CrmV3Target
from bulkleads.hubspot.crm_fields import crm_v3_rules
from bulkleads.hubspot.http import AuthMode
from bulkleads.hubspot.limits import Limit
from bulkleads.hubspot.objects import (
    STANDARD_OBJECTS,
    STANDARD_TYPE_IDS,
    CustomObject,
    fetch_custom_objects,
)
from bulkleads.hubspot.objects import resolve as resolve_object
from bulkleads.hubspot.options import VERSIONS, ApiOptions, crm_root
from bulkleads.hubspot.pipelines import PIPELINE_PROPERTIES, Pipeline, fetch_pipelines
from bulkleads.hubspot.properties import Portal
from bulkleads.hubspot.properties import fetch as fetch_properties
from bulkleads.token import Token

# Engagements (activities), logged on contacts, companies, deals and tickets.
ENGAGEMENTS: Final = ("calls", "emails", "meetings", "notes", "tasks")
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
    # an engagement "requires" the time it happened (HubSpot's calls, emails, meetings, notes
    # and tasks guides)
    **{e: (("hs_timestamp",),) for e in ENGAGEMENTS},
}
# Free/Starter apps get 100 per 10 s; the portal's own answer replaces it (see pacing.py).
DEFAULT_PACE: Final = Limit(100, 10.0)
# The objects an ``associate:OBJECT`` column may link a record to by HubSpot's own types,
# asked of no portal; a custom object's schema lists its own, and any other pair is asked of
# the portal's association labels before the first write.
ASSOCIABLE: Final[dict[str, tuple[str, ...]]] = {
    "contacts": ("companies", "deals", "tickets", *ENGAGEMENTS),
    "companies": ("contacts", "deals", "tickets", *ENGAGEMENTS),
    "deals": ("contacts", "companies", "tickets", "line_items", *ENGAGEMENTS),
    "tickets": ("contacts", "companies", "deals", *ENGAGEMENTS),
    "line_items": ("deals",),
    **{e: ("contacts", "companies", "deals", "tickets") for e in ENGAGEMENTS},
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
    linked: tuple[CustomObject, ...] = ()  # the custom objects the job links to, resolved
    # the portal's custom objects as this run read them (resolving --object): links to a
    # custom object are checked against them without reading the schemas again; not kept
    customs: tuple[CustomObject, ...] | None = field(default=None, compare=False, repr=False)
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
            _custom_from_meta(custom) if isinstance(custom, Mapping) else None,
            tuple(_custom_from_meta(c) for c in saved.get("linked", ()) if isinstance(c, Mapping)),
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
        return replace(
            self, object_type=custom.object_type_id, custom=custom, customs=tuple(customs)
        )

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
            "linked": [asdict(c) for c in self.linked],
        }

    def rules(self, portal: Portal | None) -> FieldRules:
        """The portal's own property rules when they were read, else HubSpot's defaults."""
        dates = frozenset(self.date_fields)
        if portal is not None:
            rules = portal.rules(self.id_property, dates)
        else:
            rules = crm_v3_rules(dates, self.id_property, self.object_type)
        # with the portal read, a link to an object not listed is asked of it after planning
        rules = replace(
            rules, associable=ASSOCIABLE.get(self.object_type, ()), links_any=portal is not None
        )
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
        address = self.address(to_object)
        if prop is not None and SEARCHED.get(to_object) == prop:
            finder = SearchTarget(base_url, token, to_object, prop, self.version)
        elif prop is not None:
            finder = CrmV3Target(base_url, token, address, id_property=prop, version=self.version)
        pair = (base_url, token, self.object_type, address, self.version)
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
                base_url,
                token,
                self.address(obj),
                timeout=timeout,
                patience=patience,
                version=self.version,
            )
            made += 1
            if portal is not None:
                portal.check_match(prop, f"--associate-by {obj}=")
        kinds = {
            obj: fetch_type(
                base_url,
                token,
                (self.object_type, self.address(obj)),
                label,
                version=self.version,
                timeout=timeout,
                patience=patience,
                named=(self.shown, obj),
            )
            for obj, label in sorted(labels.items())
        }
        return made + len(kinds), kinds

    def describe(self, host: str) -> str:
        """The target column of ``bulkleads jobs``."""
        return f"{self.name} {self.shown} {host}"

    @property
    def shown(self) -> str:
        """This object as messages name it: a custom object by its name, not its type id."""
        return self.custom.name if self.custom is not None else self.object_type

    def address(self, name: str) -> str:
        """How HubSpot's paths name the object a link column names: a custom object by its
        type id (HubSpot refuses a custom object's plain name in a path since June 2025),
        a standard one by its name."""
        for custom in self.linked:
            if custom.named(name):
                return custom.object_type_id
        return name

    def link_objects(
        self,
        base_url: str,
        token: Token,
        names: Sequence[str],
        *,
        timeout: float,
        patience: float,
    ) -> tuple[Crm, int]:
        """Before the first write: each object the job links to, made sure the portal has it
        and associates this object with it. One HubSpot defines for this object is taken as
        it is; a custom one is looked up in the portal's schemas (read once: its type id is
        what HubSpot's paths take), whose associations say whether the two are linked; another
        standard pair is asked of the portal's labels endpoint. Returns this API knowing the
        custom ones, and the requests made; anything else is exit 2 naming what the portal
        has."""
        allowed = set(ASSOCIABLE.get(self.object_type, ()))
        if self.custom is not None:
            allowed = set(self.custom.links)
        made, customs = 0, self.customs
        linked = list(self.linked)
        for name in names:
            if any(c.named(name) for c in linked):
                continue
            standard = STANDARD_TYPE_IDS.get(name, name)  # "0-2" is companies, as HubSpot says
            if standard in STANDARD_OBJECTS:
                if standard in allowed:
                    continue
                if self.custom is not None:  # its schema says what it links to
                    raise self._not_linked(name, allowed)
                made += 1
                listed = read_labels(
                    base_url,
                    token,
                    (self.object_type, name),
                    version=self.version,
                    timeout=timeout,
                    patience=patience,
                    named=(self.shown, name),
                )
                if not listed:
                    raise self._not_linked(name, allowed)
                continue
            if customs is None:
                made += 1
                try:
                    customs = tuple(
                        fetch_custom_objects(
                            base_url,
                            token,
                            version=self.version,
                            timeout=timeout,
                            patience=patience,
                        )
                    )
                except UsageError as exc:  # no schema scope: say which column needed it
                    close = difflib.get_close_matches(name.lower(), sorted(allowed), n=1)
                    meant = f" (did you mean associate:{close[0]}?)" if close else ""
                    raise UsageError(
                        f"column associate:{name}: no standard object has that name{meant}, "
                        f"and looking it up among the portal's custom objects failed: {exc}"
                    ) from None
            other = next((c for c in customs if c.named(name)), None)
            if other is None:
                raise self._not_linked(name, allowed, customs)
            if other.name not in allowed and self.shown not in other.links:
                raise self._not_linked(name, allowed)
            linked.append(other)
        return replace(self, linked=tuple(dict.fromkeys(linked)), customs=customs), made

    def _not_linked(
        self, name: str, allowed: set[str], customs: tuple[CustomObject, ...] | None = None
    ) -> UsageError:
        """Exit 2 for a link column the portal cannot make: with ``customs``, the portal has
        no object of that name (did you mean one this object links to?)."""
        listed = ", ".join(sorted(allowed)) or "no object bulkleads knows of"
        said = f"the portal does not associate {self.shown} with {name}"
        if customs is not None:
            names = [*sorted(allowed), *(c.name for c in customs), *STANDARD_OBJECTS]
            close = difflib.get_close_matches(name.lower(), names, n=1)
            said = "the portal has no such object" + (
                f" (did you mean associate:{close[0]}?)" if close else ""
            )
            theirs = ", ".join(f"{c.name} ({c.object_type_id})" for c in customs) or "none"
            listed += f"; the portal's custom objects: {theirs}"
        return UsageError(
            f"column associate:{name}: {said}. A {self.rules(None).noun} links to {listed} "
            "(another standard object when the portal's association labels list it)"
        )


def _custom_from_meta(saved: Mapping[str, Any]) -> CustomObject:
    return CustomObject(
        str(saved["object_type_id"]),
        str(saved["name"]),
        str(saved["fully_qualified_name"]),
        str(saved["singular"]),
        tuple(saved["required"]),
        tuple(saved.get("links", ())),
    )
