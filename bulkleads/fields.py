"""What a lead field is, and how a spreadsheet cell becomes the value HubSpot expects.

Pure functions, no I/O. The facts come from HubSpot's sample lead JSON (see
``shared/reference/hubspot-api.md``): unset strings are ``""``, timestamps are integer milliseconds
since the epoch (``closedAt`` is 0 while a lead is open), booleans are JSON booleans.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Final

# Properties HubSpot checks as email addresses (INVALID_EMAIL): a contact's and a lead's.
EMAIL_FIELDS: Final = frozenset({"email"})

# System-managed fields of a lead. The API page's own list could not be recovered, so this is the
# set that HubSpot fills in itself; ``--allow-field`` overrides it for a portal that differs.
NOT_EDITABLE: Final = frozenset(
    {
        "guid",
        "id",
        "leadId",
        "portalId",
        "userToken",
        "insertedAt",
        "lastModifiedAt",
        "lastConvertedAt",
        "firstConvertedAt",
        "firstVisitSetAt",
        "customerStatusModifiedAt",
        "sourceValueModifiedAt",
        "leadJsonLink",
        "leadLink",
        "publicLeadLink",
        "numConversionEvents",
        "score",
        "rawScore",
        "analyticsDetails",
        "crmDetails",
        "leadConversionEvents",
        "leadCustomerStatusModifyLogs",
        "leadDeleteLogs",
    }
)

BOOLEAN_FIELDS: Final = frozenset(
    {
        "isCustomer",
        "isDeleted",
        "imported",
        "emailBounced",
        "emailOptOut",
        "eligibleForEmail",
        "leadNurturingActive",
    }
)

# Standard editable fields that are not booleans; sent as given (strings from CSV).
PLAIN_FIELDS: Final = frozenset(
    {
        "firstName",
        "lastName",
        "salutation",
        "email",
        "phone",
        "fax",
        "website",
        "company",
        "jobTitle",
        "industry",
        "address",
        "city",
        "state",
        "zip",
        "country",
        "twitterHandle",
        "message",
        "firstURL",
        "firstURLReferrer",
        "firstVisitUrl",
        "sourceValue",
        "sourceValueType",
        "firstSourceValue",
        "firstSourceValueType",
        "sourceId",
        "leadNurturingCampaignId",
    }
)

KNOWN_FIELDS: Final = NOT_EDITABLE | BOOLEAN_FIELDS | PLAIN_FIELDS | {"closedAt"}

_GUID = re.compile(r"[A-Za-z0-9_-]{1,128}", re.ASCII)
_TRUE: Final = frozenset({"true", "yes", "y", "1"})
_FALSE: Final = frozenset({"false", "no", "n", "0"})
# Integers below this are more likely epoch *seconds* (before 1973 in milliseconds).
_SMALLEST_PLAUSIBLE_MS: Final = 100_000_000_000
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class FieldError(ValueError):
    """A value that cannot be sent for its field; the message names field and value."""


class Clear:
    """The marker for "clear this field" (``--clear-token`` in CSV, ``null`` in JSONL)."""

    _instance: Clear | None = None

    def __new__(cls) -> Clear:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "CLEAR"


CLEAR: Final = Clear()

Value = str | int | float | bool


def is_valid_guid(guid: str) -> bool:
    """True for guids safe to put in a URL path: ASCII letters, digits, ``_`` and ``-`` only."""
    return _GUID.fullmatch(guid) is not None


def is_timestamp(field: str) -> bool:
    """``closedAt`` and every other editable ``...At`` field carries epoch milliseconds."""
    return field.endswith("At") and field not in NOT_EDITABLE


def not_editable(fields: Iterable[str], allowed: frozenset[str] = frozenset()) -> list[str]:
    """The fields in ``fields`` HubSpot would refuse, in the order given."""
    return [f for f in fields if f in NOT_EDITABLE and f not in allowed and f != "guid"]


def coerce(field: str, raw: object, tz: tzinfo = UTC) -> Value:
    """The JSON value to send for ``raw`` in ``field``, or :class:`FieldError` saying why not."""
    if field in BOOLEAN_FIELDS:
        return _boolean(field, raw)
    if is_timestamp(field):
        return timestamp(field, raw, tz)
    if raw is CLEAR:
        return ""
    if isinstance(raw, str | int | float | bool):
        checked_email(field, raw)
        return raw
    raise FieldError(f"{field}: expected a plain value, got {type(raw).__name__} {shown(raw)}")


def email_error(name: str, text: str) -> str | None:
    """Why HubSpot would refuse ``text`` as the value of an email property (its INVALID_EMAIL),
    or None. HubSpot does not publish its rule; email-validator's syntax check (no DNS lookup)
    refuses what HubSpot was seen refusing (no @, two @, spaces, a dotless or reserved domain)
    and keeps plus-addressing, apostrophes and international addresses. Imported here, not at
    the top: most runs never write an email, and the import costs a start 50 ms."""
    from email_validator import EmailNotValidError, validate_email

    try:
        validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        return f"{name}: {shown(text)} is not an email address HubSpot accepts ({exc})"
    return None


def checked_email(field: str, raw: object) -> None:
    """Raise :class:`FieldError` for a value of an email property HubSpot would refuse ("" is
    an unset string, not an address)."""
    if field not in EMAIL_FIELDS or not isinstance(raw, str) or not raw:
        return
    if (problem := email_error(field, raw)) is not None:
        raise FieldError(problem)


def _boolean(field: str, raw: object) -> bool:
    if raw is CLEAR:
        raise FieldError(f"{field} cannot be cleared; give true or false")
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower() if isinstance(raw, str | int) else None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise FieldError(f"{field}: {shown(raw)} is not a boolean; use true/false, yes/no or 1/0")


def timestamp(field: str, raw: object, tz: tzinfo) -> int:
    """Epoch milliseconds from epoch milliseconds or ISO 8601 (dates and naive times in
    ``tz``); :class:`FieldError` for anything else, and for 10-digit epoch seconds."""
    if raw is CLEAR:
        return 0
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise FieldError(f"{field}: {shown(raw)} is not a timestamp")
    text = str(raw).strip()
    if text.isascii() and text.isdigit():
        millis = int(text)
        if 0 < millis < _SMALLEST_PLAUSIBLE_MS:
            raise FieldError(
                f"{field}: {text} looks like epoch seconds; give milliseconds ({millis * 1000})"
            )
        return millis
    parsed = iso_millis(text, tz)
    if parsed is None:
        raise FieldError(
            f"{field}: {shown(raw)} is not a date; use epoch milliseconds or ISO 8601 "
            "such as 2024-03-01 or 2024-03-01T09:30:00+01:00" + _date_hint(text)
        )
    return parsed


_LOCAL_DATE: Final = re.compile(r"(\d{1,2})([/.-])(\d{1,2})\2(\d{4})")


def _date_hint(text: str) -> str:
    """For a local date such as 13/03/2024: the --date-format that reads it."""
    match = _LOCAL_DATE.fullmatch(text)
    if match is None:
        return ""
    first, sep, second = int(match.group(1)), match.group(2), int(match.group(3))
    day_first, month_first = f"%d{sep}%m{sep}%Y", f"%m{sep}%d{sep}%Y"
    if first > 12:
        return f", or pass --date-format {day_first}"
    if second > 12:
        return f", or pass --date-format {month_first}"
    return f"; it is ambiguous: pass --date-format {day_first} (day first) or {month_first}"


def local_date(field: str, text: str, formats: tuple[str, ...]) -> str:
    """``text`` read with the first of ``formats`` (strptime) that fits, as ISO 8601; text no
    format fits is returned as it is (ISO and epoch milliseconds still work). Two formats
    that read it as different dates make it ambiguous: :class:`FieldError`."""
    readings: dict[str, str] = {}
    for form in formats:
        try:
            readings.setdefault(datetime.strptime(text.strip(), form).isoformat(), form)
        except ValueError:
            continue
    if len(readings) > 1:
        shown = ", ".join(f"{form} reads {iso[:10]}" for iso, form in readings.items())
        raise FieldError(
            f"{field}: {text!r} is ambiguous ({shown}); pass only the --date-format meant"
        )
    if not readings and formats and _LOCAL_DATE.fullmatch(text.strip()):
        # A local date the given formats do not read: a day or month out of range (31/02),
        # not a missing flag.
        raise FieldError(
            f"{field}: {text!r} is no date that --date-format {' or '.join(formats)} reads; "
            "is the day or the month out of range?"
        )
    return next(iter(readings), text)


@lru_cache(maxsize=4096)  # exports repeat the same few dates on many rows
def iso_millis(text: str, tz: tzinfo) -> int | None:
    """Epoch milliseconds of an ISO 8601 date or time (naive ones in ``tz``), else None."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return (parsed - _EPOCH) // timedelta(milliseconds=1)


_BRIEF: Final = 120  # characters of a value the plan shows before saying its length


def brief(value: object) -> object:
    """A value as the plan's example shows it: a long text cut, with its length said (a
    1 MiB cell printed whole buries the plan)."""
    if isinstance(value, str) and len(value) > _BRIEF:
        return f"{value[:_BRIEF]}… ({len(value):,} characters in all)"
    return value


def shown(raw: object) -> str:
    """A value as an error message quotes it: its repr, cut to 60 characters."""
    text = repr(raw)
    return text if len(text) <= 60 else text[:57] + "..."


_TYPO_CUTOFF: Final = 0.8  # difflib ratio: isCustomr~isCustomer 0.95, phone2~phone 0.91


def _squash(name: str) -> str:
    return re.sub(r"[\s_-]+", "", name).casefold()


def suggestion(name: str, known: Iterable[str]) -> str | None:
    """The standard field ``name`` most likely means, when it is one but for case, ``_``,
    ``-`` or spaces (``closed_at``, ``City``) or a small edit (``isCustomr``); else None."""
    by_squash = {_squash(k): k for k in known}
    squashed = _squash(name)
    if squashed in by_squash:
        return by_squash[squashed]
    close = difflib.get_close_matches(squashed, by_squash, n=1, cutoff=_TYPO_CUTOFF)
    return by_squash[close[0]] if close else None


@dataclass(frozen=True)
class FieldRules:
    """One API's rules: its key column, the fields it refuses, and how a cell becomes a value."""

    api: str
    key: str
    key_error: Callable[[str], str | None]
    not_editable: frozenset[str]
    known: frozenset[str]  # the standard fields; any other is a typo or a custom field
    coerce: Callable[[str, object, tzinfo], Value]
    noun: str = "lead"  # what one record is called in messages
    is_date: Callable[[str], bool] = lambda name: False  # takes dates (--date-format reads)
    from_portal: bool = False  # ``known`` is the portal's own list: nothing else exists
    is_empty: Callable[[str, object], bool] = lambda name, value: value in (None, "")
    # Keys as the API compares them: two rows whose keys HubSpot takes for one record bundle
    # into one (emails case-insensitively).
    normalize_key: Callable[[str], str] = lambda key: key
    # What a record needs to be created (``--create``): one of these sets of properties,
    # whole (a line item: a product, or a name and a price). A row that would create one
    # without any is refused before the first request.
    required: tuple[tuple[str, ...], ...] = ()
    associable: tuple[str, ...] = ()  # objects an ``associate:OBJECT`` column may link to
    # another object too: the portal is asked whether it allows the link after planning
    links_any: bool = False

    def required_words(self) -> str:
        return needs_words(self.required)

    # True when writing ``now`` over ``was`` moves ``name`` back a stage (HubSpot's lifecycle
    # stages only move forward: a backward set is ignored unless the stage is cleared first).
    moves_back: Callable[[str, object, object], bool] = lambda name, was, now: False
    # A row's (or a bundle's) fields checked together once each is converted, with the
    # record's current values when they were read (a stage of the row's pipeline, else of the
    # record's); raises FieldError, or gives the fields as they are sent. None: no such rule,
    # and no call on each of a million rows.
    check_row: Callable[[dict[str, object], dict[str, object]], dict[str, object]] | None = None


def needs_words(required: tuple[tuple[str, ...], ...]) -> str:
    """What creating needs, in words: ``dealname and dealstage``; ``hs_product_id, or name
    and price``."""
    return ", or ".join(" and ".join(names) for names in required)


def _guid_error(guid: str) -> str | None:
    if is_valid_guid(guid):
        return None
    return f"guid {guid[:80]!r} is not valid: use letters, digits, _ and - only"


def _empty_lead_field(name: str, value: object) -> bool:
    """Unset strings are "", and an unset timestamp is 0 (``closedAt`` while a lead is open)."""
    return value in (None, "") or (value == 0 and is_timestamp(name))


LEADS_V1: Final = FieldRules(
    api="leads-v1",
    key="guid",
    key_error=_guid_error,
    not_editable=NOT_EDITABLE,
    known=KNOWN_FIELDS,
    coerce=coerce,
    is_empty=_empty_lead_field,
    is_date=is_timestamp,
)


# -- the same value, as HubSpot shows it --------------------------------------------------------
# Values are compared as HubSpot shows them, not as Python types: Leads v1 answers with typed
# JSON (``true``, ``1709251200000``), CRM v3 with strings (``"true"``,
# ``"2024-03-01T00:00:00Z"``), and a missing value equals an empty one. So ``True`` equals
# ``"true"``, ``5`` equals ``"5.0"``, and a date equals its epoch milliseconds.
_NUMBER: Final = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")


def same(a: object, b: object) -> bool:
    """Equal as HubSpot shows them (see the module's docstring)."""
    return (a == b and type(a) is type(b)) or canonical(a) == canonical(b)


def canonical(value: object) -> str:
    """One text per value as HubSpot stores it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _number(float(value)) if value == value else str(value)
    if not isinstance(value, str):
        return json.dumps(value, sort_keys=True)
    text = value.strip()
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered
    if _NUMBER.fullmatch(text):  # "5.0" is 5, but "02134" (a zip code) stays text
        return _number(float(text))
    looks_dated = len(text) >= 10 and text[:4].isdigit() and text[4] == "-"
    millis = iso_millis(text, UTC) if looks_dated else None
    return text if millis is None else str(millis)


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def plural(count: int, noun: str) -> str:
    """``noun`` as ``count`` of it reads: 1 row, 2 rows; 1 company, 2 companies."""
    if count == 1:
        return noun
    return noun[:-1] + "ies" if noun.endswith("y") else noun + "s"
