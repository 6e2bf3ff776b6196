"""Which object ``--object`` names: one of HubSpot's standard objects by name, or one of the
portal's custom objects by name, fully qualified name (``p1234_cars``) or object type id
(``2-1234567``), resolved from the portal's schemas (``GET /crm-object-schemas/{version}/
schemas``, legacy ``/crm/v3/schemas``). A custom object is then addressed by its object type
id, the one name HubSpot never changes, and named in messages by its own singular label.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
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


# HubSpot's type ids of the standard objects a custom object's associations name.
STANDARD_TYPE_IDS: Final = {
    "0-1": "contacts",
    "0-2": "companies",
    "0-3": "deals",
    "0-5": "tickets",
    "0-7": "products",
    "0-8": "line_items",
    "0-136": "leads",
}


@dataclass(frozen=True)
class CustomObject:
    """What a run needs of one custom object's schema."""

    object_type_id: str
    name: str
    fully_qualified_name: str
    singular: str  # its label, for messages
    required: tuple[str, ...]  # requiredProperties: what creating a record needs
    links: tuple[str, ...] = ()  # the standard objects its schema associates it with


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
    return [parsed for item in results if (parsed := _parse(item)) is not None]


def _parse(item: object) -> CustomObject | None:
    if not isinstance(item, Mapping) or not isinstance(item.get("objectTypeId"), str):
        return None
    labels = item.get("labels")
    singular = labels.get("singular") if isinstance(labels, Mapping) else None
    required = item.get("requiredProperties")
    name = str(item.get("name") or item["objectTypeId"])
    associations = item.get("associations")
    listed = associations if isinstance(associations, list) else []
    links = [
        STANDARD_TYPE_IDS.get(str(a.get("toObjectTypeId")))
        for a in listed
        if isinstance(a, Mapping) and a.get("fromObjectTypeId") == item["objectTypeId"]
    ]
    return CustomObject(
        object_type_id=item["objectTypeId"],
        name=name,
        fully_qualified_name=str(item.get("fullyQualifiedName") or ""),
        singular=str(singular or name).lower(),
        required=tuple(str(r) for r in required) if isinstance(required, list) else (),
        links=tuple(dict.fromkeys(link for link in links if link is not None)),
    )


def resolve(name: str, customs: list[CustomObject]) -> CustomObject:
    """The custom object ``name`` means (its name ignoring case, its fully qualified name or
    its object type id); an unknown one is exit 2 with the portal's objects."""
    wanted = name.lower()
    for custom in customs:
        if wanted in (custom.name.lower(), custom.fully_qualified_name.lower()):
            return custom
        if name == custom.object_type_id:
            return custom
    everything = [*STANDARD_OBJECTS, *(c.name for c in customs)]
    close = difflib.get_close_matches(wanted, everything, n=1)
    meant = f" (did you mean {close[0]}?)" if close else ""
    theirs = ", ".join(f"{c.name} ({c.object_type_id})" for c in customs) or "none"
    raise UsageError(
        f"--object {name}: the portal has no such object{meant}. Its custom objects: {theirs}; "
        f"HubSpot's standard ones: {', '.join(STANDARD_OBJECTS)}"
    )
