"""A CRM object's field rules without a portal to ask: HubSpot's default properties of each
object and the ones it maintains itself (a dry run without a token, or a portal whose
property list could not be read). With a token, :mod:`.hubspot.properties` builds the rules
from the portal's own definitions over these.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, tzinfo
from typing import Final

from bulkleads.fields import (
    CLEAR,
    EMAIL_FIELDS,
    FieldError,
    FieldRules,
    Value,
    checked_email,
    email_error,
    shown,
    timestamp,
)

# Properties HubSpot maintains itself on every CRM object; writing them fails the request.
CRM_READ_ONLY: Final = frozenset(
    {
        "hs_object_id",
        "createdate",
        "lastmodifieddate",
        "hs_lastmodifieddate",
        "hs_createdate",
        "hs_all_owner_ids",
        "hs_user_ids_of_all_owners",
        "hs_created_by_user_id",
        "hs_updated_by_user_id",
        "hs_object_source",
        "hs_object_source_id",
    }
)
_RECORD_ID = re.compile(r"[0-9]{1,20}", re.ASCII)
LIFECYCLE: Final = "lifecyclestage"
# HubSpot's lifecycle stages in their order (a portal's definition may reorder or add some).
LIFECYCLE_ORDER: Final = (
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
)


def stage_mover(order: tuple[str, ...]) -> Callable[[str, object, object], bool]:
    """``moves_back`` for lifecycle stages in ``order``: a set to an earlier stage than the
    record holds (a clear, or a stage not in the order, is no move back)."""
    rank = {stage: i for i, stage in enumerate(order)}

    def moves_back(name: str, was: object, now: object) -> bool:
        if name != LIFECYCLE or was not in rank or now not in rank:
            return False
        return rank[str(now)] < rank[str(was)]

    return moves_back


_OWNED: Final = ("hubspot_owner_id", "hs_lead_status", "lifecyclestage", "closedate")
# HubSpot's default properties of each object (a portal adds its own: --custom-field NAME).
CRM_DEFAULT_PROPERTIES: Final[dict[str, frozenset[str]]] = {
    "contacts": frozenset(
        {
            *_OWNED,
            "firstname",
            "lastname",
            "salutation",
            "email",
            "phone",
            "mobilephone",
            "fax",
            "company",
            "website",
            "jobtitle",
            "address",
            "city",
            "state",
            "zip",
            "country",
            "industry",
            "annualrevenue",
            "numemployees",
            "message",
            "twitterhandle",
            "hs_persona",
            "hs_language",
            "date_of_birth",
            "degree",
            "field_of_study",
            "gender",
            "school",
            "seniority",
            "work_email",
            "hs_whatsapp_phone_number",
            "hs_timezone",
        }
    ),
    "companies": frozenset(
        {
            *_OWNED,
            "name",
            "domain",
            "website",
            "phone",
            "address",
            "address2",
            "city",
            "state",
            "zip",
            "country",
            "industry",
            "description",
            "numberofemployees",
            "annualrevenue",
            "type",
            "timezone",
            "linkedin_company_page",
            "facebook_company_page",
            "twitterhandle",
            "founded_year",
            "is_public",
        }
    ),
    "deals": frozenset(
        {
            *_OWNED,
            "dealname",
            "amount",
            "dealstage",
            "pipeline",
            "dealtype",
            "description",
            "hs_priority",
            "hs_forecast_probability",
            "hs_next_step",
            "closed_lost_reason",
            "closed_won_reason",
        }
    ),
    "leads": frozenset(
        {
            "hubspot_owner_id",
            "hs_lead_name",
            "hs_lead_type",
            "hs_lead_label",
            "hs_pipeline",
            "hs_pipeline_stage",
            "hs_lead_disqualification_reason",
            "hs_lead_disqualification_note",
        }
    ),
}


def crm_v3_rules(
    date_fields: frozenset[str], id_property: str | None, crm_object: str = "contacts"
) -> FieldRules:
    """CRM v3 properties are strings: dates become epoch-millisecond strings, clearing is ""."""

    def key_error(key: str) -> str | None:
        if id_property is None:
            if _RECORD_ID.fullmatch(key):
                return None
            return (
                f"id {key[:80]!r} is not a record id (digits only); to match records by "
                "another unique property (email, ...) use --match NAME"
            )
        if len(key) > 1000 or any(ord(c) < 32 for c in key):
            return f"{id_property} {key[:80]!r} cannot identify a record"
        if id_property in EMAIL_FIELDS:  # no record holds it, and --create would be refused
            return email_error(id_property, key)
        return None

    def to_property(field: str, raw: object, tz: tzinfo = UTC) -> Value:
        if field in date_fields:
            return "" if raw is CLEAR else str(timestamp(field, raw, tz))
        if raw is CLEAR:
            return ""
        if isinstance(raw, bool):
            return "true" if raw else "false"
        if isinstance(raw, str | int | float):
            checked_email(field, str(raw))
            return str(raw)
        raise FieldError(f"{field}: expected a plain value, got {type(raw).__name__} {shown(raw)}")

    known = CRM_DEFAULT_PROPERTIES.get(crm_object, frozenset()) | CRM_READ_ONLY | date_fields
    return FieldRules(
        "crm-v3",
        id_property or "id",
        key_error,
        CRM_READ_ONLY,
        known,
        to_property,
        noun=singular(crm_object),
        is_date=date_fields.__contains__,
        normalize_key=str.lower if id_property == "email" else lambda key: key,
        moves_back=stage_mover(LIFECYCLE_ORDER),
    )


def singular(crm_object: str) -> str:
    """One record of ``crm_object`` in messages: contact, company, deal, lead."""
    return crm_object[:-3] + "y" if crm_object.endswith("ies") else crm_object.removesuffix("s")
