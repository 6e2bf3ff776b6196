"""The sandbox's CRM v3 property definitions: HubSpot-like defaults per object, plus seeds.

``GET /crm/v3/properties/{object}`` answers with them in HubSpot's shape (valid against
``CollectionResponsePropertyNoPaging`` in ``specs/crm-v3-properties.json``), and batch updates are
checked against them as HubSpot checks: unknown and read-only properties refuse the batch, and so
does an enumeration value that is not an option's value, or a malformed number, bool or date.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

_LIFECYCLE: Final = (
    ("Subscriber", "subscriber"),
    ("Lead", "lead"),
    ("Marketing Qualified Lead", "marketingqualifiedlead"),
    ("Sales Qualified Lead", "salesqualifiedlead"),
    ("Opportunity", "opportunity"),
    ("Customer", "customer"),
    ("Evangelist", "evangelist"),
    ("Other", "other"),
)
_LEAD_STATUS: Final = (
    ("New", "NEW"),
    ("Open", "OPEN"),
    ("In Progress", "IN_PROGRESS"),
    ("Open Deal", "OPEN_DEAL"),
    ("Unqualified", "UNQUALIFIED"),
    ("Attempted to Contact", "ATTEMPTED_TO_CONTACT"),
    ("Connected", "CONNECTED"),
    ("Bad Timing", "BAD_TIMING"),
)
_TEXT: Final = "string"
ENGAGEMENTS: Final = ("calls", "emails", "meetings", "notes", "tasks")  # activities
EMAIL_PROPERTIES: Final = frozenset({"email"})  # HubSpot answers INVALID_EMAIL for a bad one
# (name, type, options or None, flags): "ro" read-only value, "calc" calculated.
_Spec = tuple[str, str, tuple[tuple[str, str], ...] | None, str]
_COMMON: Final[tuple[_Spec, ...]] = (
    ("hs_object_id", "number", None, "ro"),
    ("createdate", "datetime", None, "ro"),
    ("lastmodifieddate", "datetime", None, "ro"),
    # HubSpot maintains these on every object; writing one fails the request.
    ("hs_createdate", "datetime", None, "ro"),
    ("hs_lastmodifieddate", "datetime", None, "ro"),
    ("hs_all_owner_ids", _TEXT, None, "ro"),
    ("hs_user_ids_of_all_owners", _TEXT, None, "ro"),
    ("hs_created_by_user_id", "number", None, "ro"),
    ("hs_updated_by_user_id", "number", None, "ro"),
    ("hs_object_source", _TEXT, None, "ro"),
    ("hs_object_source_id", _TEXT, None, "ro"),
    ("hubspot_owner_id", "enumeration", (), ""),
)
_DEFAULTS: Final[dict[str, tuple[_Spec, ...]]] = {
    "contacts": (
        *((n, _TEXT, None, "") for n in ("firstname", "lastname", "email", "phone", "company")),
        *((n, _TEXT, None, "") for n in ("jobtitle", "city", "state", "zip", "country")),
        ("lifecyclestage", "enumeration", _LIFECYCLE, ""),
        ("hs_lead_status", "enumeration", _LEAD_STATUS, ""),
        ("closedate", "datetime", None, ""),
        ("date_of_birth", "date", None, ""),
        ("annualrevenue", "number", None, ""),
        ("hs_email_optout", "bool", (("True", "true"), ("False", "false")), ""),
        ("num_associated_deals", "number", None, "calc"),
    ),
    "companies": (
        *((n, _TEXT, None, "") for n in ("name", "domain", "phone", "city", "state", "country")),
        ("lifecyclestage", "enumeration", _LIFECYCLE, ""),
        ("numberofemployees", "number", None, ""),
        ("closedate", "datetime", None, ""),
        ("num_associated_contacts", "number", None, "calc"),
    ),
    "deals": (
        ("dealname", _TEXT, None, ""),
        ("amount", "number", None, ""),
        (
            "dealstage",
            "enumeration",
            (("Closed won", "closedwon"), ("Closed lost", "closedlost")),
            "",
        ),
        ("pipeline", "enumeration", (("Sales Pipeline", "default"),), ""),
        ("closedate", "datetime", None, ""),
        ("hs_is_closed", "bool", (("True", "true"), ("False", "false")), "calc"),
    ),
    "tickets": (
        ("subject", _TEXT, None, ""),
        ("content", _TEXT, None, ""),
        ("hs_pipeline", "enumeration", (("Support Pipeline", "0"),), ""),
        (
            "hs_pipeline_stage",
            "enumeration",
            (("New", "1"), ("Waiting on contact", "2"), ("Waiting on us", "3"), ("Closed", "4")),
            "",
        ),
        (
            "hs_ticket_priority",
            "enumeration",
            (("Low", "LOW"), ("Medium", "MEDIUM"), ("High", "HIGH"), ("Urgent", "URGENT")),
            "",
        ),
        ("closed_date", "datetime", None, ""),
    ),
    "products": (
        ("name", _TEXT, None, ""),
        ("description", _TEXT, None, ""),
        ("price", "number", None, ""),
        ("hs_sku", _TEXT, None, ""),
    ),
    "line_items": (
        ("name", _TEXT, None, ""),
        ("price", "number", None, ""),
        ("quantity", "number", None, ""),
        ("hs_product_id", "number", None, ""),
        ("amount", "number", None, "calc"),
    ),
    # engagements (activities): each has the time it happened, which creating one needs
    "calls": (
        ("hs_timestamp", "datetime", None, ""),
        ("hs_call_title", _TEXT, None, ""),
        ("hs_call_body", _TEXT, None, ""),
    ),
    "emails": (
        ("hs_timestamp", "datetime", None, ""),
        ("hs_email_subject", _TEXT, None, ""),
        ("hs_email_text", _TEXT, None, ""),
    ),
    "meetings": (
        ("hs_timestamp", "datetime", None, ""),
        ("hs_meeting_title", _TEXT, None, ""),
        ("hs_meeting_body", _TEXT, None, ""),
    ),
    "notes": (
        ("hs_timestamp", "datetime", None, ""),
        ("hs_note_body", _TEXT, None, ""),
    ),
    "tasks": (
        ("hs_timestamp", "datetime", None, ""),
        ("hs_task_subject", _TEXT, None, ""),
        ("hs_task_body", _TEXT, None, ""),
        (
            "hs_task_status",
            "enumeration",
            (("Not started", "NOT_STARTED"), ("Completed", "COMPLETED")),
            "",
        ),
    ),
    "leads": (
        ("hs_lead_name", _TEXT, None, ""),
        ("hs_lead_type", "enumeration", (("New Business", "NEW_BUSINESS"),), ""),
        ("hs_pipeline_stage", "enumeration", (("New", "new-stage-id"),), ""),
    ),
}
# What a record of each object needs to be created, as HubSpot's object guides say
# (developers.hubspot.com, api-reference/2026-03/crm/objects/{deals,leads}/guide); the
# properties API does not mark it, so the sandbox keeps it beside its definitions.
# HubSpot's default pipelines: the deal pipeline "default" and the ticket pipeline "0"
# (shared/reference/hubspot-api.md); a seed adds others (--crm-pipelines OBJECT=FILE).
DEFAULT_PIPELINES: Final[dict[str, list[dict[str, Any]]]] = {
    "deals": [
        {
            "id": "default",
            "label": "Sales Pipeline",
            "displayOrder": 0,
            "stages": [
                {"id": sid, "label": label, "displayOrder": i, "metadata": {}}
                for i, (sid, label) in enumerate(
                    (
                        ("appointmentscheduled", "Appointment scheduled"),
                        ("qualifiedtobuy", "Qualified to buy"),
                        ("presentationscheduled", "Presentation scheduled"),
                        ("decisionmakerboughtin", "Decision maker bought-in"),
                        ("contractsent", "Contract sent"),
                        ("closedwon", "Closed won"),
                        ("closedlost", "Closed lost"),
                    )
                )
            ],
        }
    ],
    "tickets": [
        {
            "id": "0",
            "label": "Support Pipeline",
            "displayOrder": 0,
            "stages": [
                {"id": sid, "label": label, "displayOrder": i, "metadata": {}}
                for i, (sid, label) in enumerate(
                    (
                        ("1", "New"),
                        ("2", "Waiting on contact"),
                        ("3", "Waiting on us"),
                        ("4", "Closed"),
                    )
                )
            ],
        }
    ],
}
PIPELINE_PROPERTIES: Final = {
    "deals": ("pipeline", "dealstage"),
    "tickets": ("hs_pipeline", "hs_pipeline_stage"),
}
# Each entry: the sets of properties of which one, whole, makes a record (a line item is made
# from a product, or from a name and a price).
REQUIRED_TO_CREATE: Final[dict[str, tuple[tuple[str, ...], ...]]] = {
    "deals": (("dealname", "dealstage"),),
    "leads": (("hs_lead_name",),),
    "tickets": (("subject", "hs_pipeline", "hs_pipeline_stage"),),
    "line_items": (("hs_product_id",), ("name", "price")),
    **{e: (("hs_timestamp",),) for e in ENGAGEMENTS},
}
_FIELD_TYPES: Final = {
    "string": "text",
    "number": "number",
    "date": "date",
    "datetime": "date",
    "enumeration": "select",
    "bool": "booleancheckbox",
}


def _definition(crm_object: str, name: str, kind: str, options: Any, flags: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": name.replace("_", " ").title(),
        "type": kind,
        "fieldType": _FIELD_TYPES.get(kind, "text"),
        "description": "",
        "groupName": f"{crm_object.rstrip('s')}information",
        "options": [
            {"label": label, "value": value, "hidden": False, "displayOrder": i}
            for i, (label, value) in enumerate(options or ())
        ],
        "calculated": flags == "calc",
        "hasUniqueValue": name == "email",
        "hubspotDefined": True,
        "modificationMetadata": {
            "archivable": False,
            "readOnlyDefinition": True,
            "readOnlyValue": flags in ("ro", "calc"),
        },
    }


def default_definitions(crm_object: str) -> dict[str, dict[str, Any]]:
    """HubSpot-like default properties of one object type, by name."""
    specs = (*_COMMON, *_DEFAULTS.get(crm_object, ()))
    return {
        name: _definition(crm_object, name, kind, options, flags)
        for name, kind, options, flags in specs
    }


def is_email(value: str) -> bool:
    """Whether HubSpot takes ``value`` for an email property (refusing it is INVALID_EMAIL).
    HubSpot's own rule is not published; a syntax check without DNS stands in for it."""
    from email_validator import EmailNotValidError, validate_email

    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def load_definitions(crm_object: str, path: Path) -> dict[str, dict[str, Any]]:
    """Seeded definitions (a JSON list, HubSpot's shape; missing keys get defaults) over the
    defaults: a portal's custom, read-only or calculated properties and its options."""
    return merge_definitions(crm_object, json.loads(path.read_text(encoding="utf-8")))


def merge_definitions(crm_object: str, items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Definitions in HubSpot's shape over the object's defaults (a custom object has only
    the common ones)."""
    merged = default_definitions(crm_object)
    for item in items:
        base = _definition(crm_object, item["name"], item.get("type", _TEXT), None, "")
        merged[item["name"]] = {**base, **item}
    return merged


def value_error(definition: dict[str, Any], value: str) -> str | None:
    """Why HubSpot would refuse ``value`` for this property, or None."""
    if value == "":
        return None
    if definition.get("name") in EMAIL_PROPERTIES and not is_email(value):
        return f"{value!r} is not a valid email address"
    kind = definition.get("type")
    if kind == "enumeration" and definition.get("options"):
        allowed = {o["value"] for o in definition["options"]}
        parts = value.split(";") if definition.get("fieldType") == "checkbox" else [value]
        bad = [p for p in parts if p not in allowed]
        return f"{bad[0]!r} was not one of the allowed options" if bad else None
    if kind == "bool" and value not in ("true", "false"):
        return f"{value!r} is not a valid boolean"
    if kind in ("number", "date", "datetime"):
        try:
            number = float(value)
        except ValueError:
            return f"{value!r} is not a valid {kind}"
        if kind == "date" and number % 86_400_000:
            return f"{value!r} is not midnight UTC"
    return None
