"""The portal's own CRM v3 property definitions, and the field rules they make.

HubSpot's defaults are a guess at a portal: it adds custom properties, makes some read-only and
defines each enumeration's options. So before planning a CRM v3 job with a token, bulkleads reads
``GET /crm/v3/properties/{object}`` once and checks every column against it: an unknown property
stops the run ("did you mean"), a read-only or calculated one stops it, an enumeration value that
is neither an option's value nor its label is an invalid row (a label is sent as its value), and
numbers, booleans, dates and datetimes are checked and written as HubSpot expects.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from typing import Final

import httpx

from bulkleads.errors import PortalUnavailable, UsageError
from bulkleads.fields import CLEAR, FieldError, FieldRules, Value, checked_email, timestamp
from bulkleads.hubspot.crm_fields import (
    CRM_READ_ONLY,
    LIFECYCLE,
    LIFECYCLE_ORDER,
    crm_v3_rules,
    stage_mover,
)
from bulkleads.hubspot.http import NOT_JSON, answer_json, check_base_url
from bulkleads.hubspot.options import VERSIONS, crm_root
from bulkleads.hubspot.pipelines import PIPELINE_PROPERTIES, Pipeline, display_order, stage_check
from bulkleads.hubspot.reads import Transient, get
from bulkleads.token import Token

_DAY_MS: Final = 86_400_000
_LOG: Final = logging.getLogger("bulkleads.properties")


@dataclass(frozen=True, slots=True)
class Property:
    """What bulkleads needs of a property definition."""

    name: str
    type: str  # string, number, date, datetime, enumeration, bool
    field_type: str = "text"  # checkbox: several options, ";"-separated
    options: tuple[tuple[str, str], ...] = ()  # (label, value)
    read_only: bool = False  # modificationMetadata.readOnlyValue, or calculated
    unique: bool = False  # hasUniqueValue: records can be matched by it (--match)


@dataclass
class Portal:
    """One object type's properties in one portal, and what planning converted with them."""

    crm_object: str
    properties: dict[str, Property]
    labels: dict[str, set[tuple[str, str]]] = field(default_factory=dict)  # name -> (label, value)
    pipelines: tuple[Pipeline, ...] = ()  # deals and tickets: the stages of each pipeline

    def to_meta(self) -> dict[str, str]:
        """``{name: type}``: what the job was checked against, kept with it."""
        return {name: prop.type for name, prop in sorted(self.properties.items())}

    def definitions(self) -> list[object]:
        """The definitions in HubSpot's own shape (what :func:`parse` reads), to keep."""
        return [
            {
                "name": p.name,
                "type": p.type,
                "fieldType": p.field_type,
                "options": [{"label": label, "value": value} for label, value in p.options],
                "modificationMetadata": {"readOnlyValue": p.read_only},
                "hasUniqueValue": p.unique,
            }
            for p in self.properties.values()
        ]

    def rules(self, id_property: str | None, date_fields: frozenset[str]) -> FieldRules:
        """The CRM v3 rules with this portal's names, read-only properties and types."""
        if id_property is not None:
            self.check_match(id_property)
        base = crm_v3_rules(date_fields, id_property, self.crm_object)
        read_only = frozenset(n for n, p in self.properties.items() if p.read_only)

        def to_property(name: str, raw: object, tz: tzinfo = UTC) -> Value:
            prop = self.properties.get(name)
            if prop is None:
                return base.coerce(name, raw, tz)
            return self._convert(prop, raw, tz)

        return FieldRules(
            api=base.api,
            key=base.key,
            key_error=base.key_error,
            not_editable=read_only | CRM_READ_ONLY,
            known=frozenset(self.properties) | CRM_READ_ONLY,
            coerce=to_property,
            noun=base.noun,
            normalize_key=base.normalize_key,
            from_portal=True,
            is_date=lambda name: (
                name in date_fields
                or getattr(self.properties.get(name), "type", "") in ("date", "datetime")
            ),
            moves_back=stage_mover(self.stages() or LIFECYCLE_ORDER),
            check_row=self._row_check(),
        )

    def _row_check(
        self,
    ) -> Callable[[dict[str, object], dict[str, object]], dict[str, object]] | None:
        if not self.pipelines or self.crm_object not in PIPELINE_PROPERTIES:
            return None
        return stage_check(self.pipelines, *PIPELINE_PROPERTIES[self.crm_object])

    def stages(self) -> tuple[str, ...]:
        """The portal's lifecycle stages in its order (none when the object has none)."""
        prop = self.properties.get(LIFECYCLE)
        return tuple(value for _, value in prop.options) if prop is not None else ()

    def check_match(self, name: str, flag: str = "--match ") -> None:
        """``--match NAME`` (or ``flag``, e.g. ``--associate-by companies=``) must be a
        property whose definition says its values are unique: HubSpot refuses to match by
        any other (a 400 for the whole batch)."""
        unique = sorted(n for n, p in self.properties.items() if p.unique)
        listed = ", ".join(unique) or "none"
        if name == "hs_object_id":
            raise UsageError(f"{flag}hs_object_id: that is the record id; drop {flag.strip()}")
        prop = self.properties.get(name)
        if prop is None:
            close = difflib.get_close_matches(name, self.properties, n=1)
            meant = f" (did you mean {close[0]}?)" if close else ""
            raise UsageError(
                f"{flag}{name}: the portal's {self.crm_object} have no such property{meant}; "
                f"their unique properties: {listed}"
            )
        if not prop.unique:
            raise UsageError(
                f"{flag}{name}: {name} is not a unique property of the portal's "
                f"{self.crm_object} (hasUniqueValue), so HubSpot cannot match records by it; "
                f"their unique properties: {listed}"
            )

    def _convert(self, prop: Property, raw: object, tz: tzinfo) -> Value:
        if raw is CLEAR:
            return ""
        if isinstance(raw, dict | list):
            raise FieldError(f"{prop.name}: expected a plain value, got {type(raw).__name__}")
        text = ("true" if raw else "false") if isinstance(raw, bool) else str(raw).strip()
        if prop.type == "enumeration":
            parts = text.split(";") if prop.field_type == "checkbox" else [text]
            return ";".join(self._option(prop, part.strip()) for part in parts)
        if prop.type == "bool":
            lowered = text.lower()
            if lowered in ("true", "yes", "y", "1"):
                return "true"
            if lowered in ("false", "no", "n", "0"):
                return "false"
            raise FieldError(f"{prop.name}: {text!r} is not a boolean; use true/false or yes/no")
        if prop.type == "number":
            try:
                float(text)
            except ValueError:
                raise FieldError(f"{prop.name}: {text!r} is not a number") from None
            return text
        if prop.type == "date":
            millis = timestamp(prop.name, text, UTC)  # a date is a day, whatever --timezone
            if millis % _DAY_MS:
                raise FieldError(
                    f"{prop.name} is a date property: give a day such as 2024-03-01, not a time"
                )
            return str(millis)
        if prop.type == "datetime":
            return str(timestamp(prop.name, text, tz))
        checked_email(prop.name, text)
        return text if isinstance(raw, str) else str(raw)

    def _option(self, prop: Property, text: str) -> str:
        if any(text == value for _, value in prop.options):
            return text
        for label, value in prop.options:
            if text.casefold() == label.casefold():
                self.labels.setdefault(prop.name, set()).add((text, value))
                return value
        shown = ", ".join(value for _, value in prop.options[:12])
        more = ", ..." if len(prop.options) > 12 else ""
        raise FieldError(f"{prop.name}: {text!r} is not one of its options ({shown}{more})")


def parse(crm_object: str, data: object) -> Portal:
    """A portal from the answer of ``GET /crm/v3/properties/{object}``."""
    results = data.get("results") if isinstance(data, Mapping) else None
    if not isinstance(results, list):
        raise ValueError("the answer has no results list")
    properties: dict[str, Property] = {}
    for item in results:
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            continue
        metadata = item.get("modificationMetadata")
        read_only = bool(item.get("calculated")) or (
            isinstance(metadata, Mapping) and bool(metadata.get("readOnlyValue"))
        )
        listed = [o for o in item.get("options") or () if isinstance(o, Mapping)]
        # in HubSpot's order (its displayOrder; -1 or none keeps the answer's place)
        listed.sort(key=display_order)
        options = tuple((str(o.get("label", "")), str(o.get("value", ""))) for o in listed)
        properties[item["name"]] = Property(
            item["name"],
            str(item.get("type", "string")),
            str(item.get("fieldType", "text")),
            options,
            read_only,
            item.get("hasUniqueValue") is True,
        )
    return Portal(crm_object, properties)


def fetch(
    base_url: str,
    token: Token,
    crm_object: str,
    *,
    timeout: float = 30.0,
    patience: float = 300.0,
    version: str = VERSIONS[0],
) -> Portal | None:
    """The portal's properties; None when the token may not read them (403: the app lacks the
    schema scope) or the portal has no such list (another 4xx), so that planning falls back to
    HubSpot's defaults, with a warning. A failure that may pass (5xx, 429, no whole answer
    within ``patience``, an answer that is not the list) stops the run before any write: a
    plan on guesses would send labels as written and let bad values through."""
    url = f"{check_base_url(base_url)}{crm_root('properties', version)}/{crm_object}"
    try:
        status, body = get(url, token, timeout=timeout, patience=patience)
    except (Transient, httpx.HTTPError, ValueError) as exc:
        raise _unavailable(crm_object, token.redact(str(exc)) or type(exc).__name__) from None
    if status == 401:
        raise UsageError("HubSpot refused the token (401) when reading property definitions")
    if status != 200:
        _LOG.warning(
            "could not read the portal's %s properties (HTTP %s%s); checking against HubSpot's "
            "defaults instead",
            crm_object,
            status,
            ": the token's app needs the schema read scope" if status == 403 else "",
        )
        return None
    try:
        data = answer_json(body)
        if data is NOT_JSON:
            raise ValueError("not JSON")
        return parse(crm_object, data)
    except ValueError as exc:
        raise _unavailable(crm_object, f"unreadable answer: {exc}") from None


def _unavailable(crm_object: str, why: str) -> PortalUnavailable:
    return PortalUnavailable(
        f"could not read the portal's {crm_object} property definitions ({why}) within "
        "--max-retry-time; nothing was sent. Run the same command again when HubSpot answers "
        "(a job that had started resumes)"
    )
