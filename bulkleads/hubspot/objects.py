"""Which object ``--object`` names: one of HubSpot's standard objects by name, or one of the
portal's custom objects by name, fully qualified name (``p1234_cars``) or object type id
(``2-1234567``), resolved from the portal's schemas (``GET /crm-object-schemas/{version}/
schemas``, legacy ``/crm/v3/schemas``). A custom object is then addressed by its object type
id, the one name HubSpot never changes, and named in messages by its own singular label.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Final

from bulkleads.errors import PortalUnavailable, UsageError
from bulkleads.hubspot.http import check_base_url
from bulkleads.hubspot.reads import get_results
from bulkleads.token import Token

# HubSpot's standard objects its objects API serves by name (developers.hubspot.com, CRM
# objects reference): those bulkleads knows the default properties of come first.
STANDARD_OBJECTS: Final = (
    "contacts",
    "companies",
    "deals",
    "tickets",
    "products",
    "line_items",
    "leads",
    "quotes",
    "calls",
    "emails",
    "meetings",
    "notes",
    "tasks",
    "communications",
    "postal_mail",
    "feedback_submissions",
    "goals",
    "invoices",
    "orders",
    "carts",
    "subscriptions",
    "payments",
    "discounts",
    "fees",
    "taxes",
    "appointments",
    "courses",
    "listings",
    "services",
)


# HubSpot's object type ids of its standard objects (developers.hubspot.com, "Using the object
# APIs": the type id table), by which a custom object's schema names what it is associated with.
STANDARD_TYPE_IDS: Final = {
    "0-1": "contacts",
    "0-2": "companies",
    "0-3": "deals",
    "0-5": "tickets",
    "0-7": "products",
    "0-8": "line_items",
    "0-14": "quotes",
    "0-18": "communications",
    "0-19": "feedback_submissions",
    "0-27": "tasks",
    "0-46": "notes",
    "0-47": "meetings",
    "0-48": "calls",
    "0-49": "emails",
    "0-53": "invoices",
    "0-69": "subscriptions",
    "0-74": "goals",
    "0-84": "discounts",
    "0-85": "fees",
    "0-86": "taxes",
    "0-101": "payments",
    "0-116": "postal_mail",
    "0-123": "orders",
    "0-136": "leads",
    "0-142": "carts",
    "0-162": "services",
    "0-410": "courses",
    "0-420": "listings",
    "0-421": "appointments",
}


@dataclass(frozen=True)
class CustomObject:
    """What a run needs of one custom object's schema."""

    object_type_id: str
    name: str
    fully_qualified_name: str
    singular: str  # its label, for messages
    required: tuple[str, ...]  # requiredProperties: what creating a record needs
    links: tuple[str, ...] = ()  # the objects its schema associates it with, by name

    def named(self, name: str) -> bool:
        """Whether ``name`` means this object: its name (any case), its fully qualified name,
        HubSpot's short form ``p_{name}``, or its object type id."""
        wanted = name.strip().lower()
        return wanted in (
            self.name.lower(),
            self.fully_qualified_name.lower(),
            f"p_{self.name.lower()}",
            self.object_type_id.lower(),
        )


def schemas_path(version: str) -> str:
    return "/crm/v3/schemas" if version == "v3" else f"/crm-object-schemas/{version}/schemas"


def fetch_custom_objects(
    base_url: str, token: Token, *, version: str, timeout: float, patience: float
) -> list[CustomObject]:
    """The portal's custom objects. A failure stops the run before any write: without the
    schemas the object cannot be named for sure."""
    url = check_base_url(base_url) + schemas_path(version)
    what = "the portal's custom object schemas"
    status, results = get_results(url, token, what, timeout=timeout, patience=patience)
    if status in (401, 403):
        raise UsageError(
            f"HubSpot refused to list the portal's custom objects ({status}): the token's "
            "app needs the custom object schema read scope (crm.schemas.custom.read)"
        )
    if results is None:
        raise PortalUnavailable(
            f"{what} could not be read (HTTP {status}); nothing was sent: run the same "
            "command again"
        )
    parsed = [custom for item in results if (custom := _parse(item)) is not None]
    names = {**STANDARD_TYPE_IDS, **{c.object_type_id: c.name for c in parsed}}
    # a schema names its associations by type id, a custom object's among them
    return [
        replace(c, links=tuple(dict.fromkeys(names[t] for t in c.links if t in names)))
        for c in parsed
    ]


def _parse(item: object) -> CustomObject | None:
    """One schema; its ``links`` still type ids (:func:`fetch_custom_objects` names them)."""
    if not isinstance(item, Mapping) or not isinstance(item.get("objectTypeId"), str):
        return None
    labels = item.get("labels")
    singular = labels.get("singular") if isinstance(labels, Mapping) else None
    required = item.get("requiredProperties")
    name = str(item.get("name") or item["objectTypeId"])
    associations = item.get("associations")
    listed = associations if isinstance(associations, list) else []
    links = [
        str(a.get("toObjectTypeId"))
        for a in listed
        if isinstance(a, Mapping) and a.get("fromObjectTypeId") == item["objectTypeId"]
    ]
    return CustomObject(
        object_type_id=item["objectTypeId"],
        name=name,
        fully_qualified_name=str(item.get("fullyQualifiedName") or ""),
        singular=str(singular or name).lower(),
        required=tuple(str(r) for r in required) if isinstance(required, list) else (),
        links=tuple(dict.fromkeys(links)),
    )


def resolve(name: str, customs: list[CustomObject], asked: str | None = None) -> CustomObject:
    """The custom object ``name`` means (see :meth:`CustomObject.named`); an unknown one is
    exit 2 with the portal's objects, said of ``asked`` (the option or column naming it)."""
    for custom in customs:
        if custom.named(name):
            return custom
    wanted = name.lower()
    everything = [*STANDARD_OBJECTS, *(c.name for c in customs)]
    close = difflib.get_close_matches(wanted, everything, n=1)
    meant = f" (did you mean {close[0]}?)" if close else ""
    theirs = ", ".join(f"{c.name} ({c.object_type_id})" for c in customs) or "none"
    raise UsageError(
        f"{asked or '--object ' + name}: the portal has no such object{meant}. Its custom "
        f"objects: {theirs}; "
        f"HubSpot's standard ones: {', '.join(STANDARD_OBJECTS)}"
    )
