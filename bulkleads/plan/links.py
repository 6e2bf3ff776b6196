"""What an ``associate:OBJECT`` column means, checked while planning.

A column named ``associate:companies`` links each row's record to the companies its cell names,
several separated by ``;``. By default a value is the record's HubSpot id; with
``--associate-by companies=PROPERTY`` it is that property's value: a property whose definition
has ``hasUniqueValue`` (found by a batch read), or a company's ``domain`` (not unique, found by
search, as HubSpot's importer finds companies). Values are compared as HubSpot compares them:
emails and domains ignoring case, a domain without its scheme, path or ``www.``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Final

from bulkleads.errors import UsageError
from bulkleads.fields import FieldError
from bulkleads.hubspot.crm_fields import singular
from bulkleads.jobstore.links import PREFIX, SEPARATOR

_RECORD_ID: Final = re.compile(r"[0-9]{1,20}", re.ASCII)
_MAX_VALUES: Final = 100  # links from one cell


def target(name: str) -> str | None:
    """The object an ``associate:OBJECT`` column links to; None for any other column."""
    return name[len(PREFIX) :].strip() if name.startswith(PREFIX) else None


def check_columns(
    names: Iterable[str],
    associable: tuple[str, ...],
    noun: str,
    by: dict[str, str],
    header: Iterable[str] = (),
    *,
    links_any: bool = False,
) -> None:
    """Stop before the first request on a link column this API or object cannot make (with
    ``links_any``, an object not in ``associable`` is the portal's to allow, asked once
    planning is done), and on an ``--associate-by`` object no column links to (naming the
    ``--map`` that would make one of the ``header``'s columns)."""
    linked = {t for name in names if (t := target(name)) is not None}
    if linked and not associable and not links_any:
        raise UsageError(
            "associate: columns link CRM records: add --api crm-v3 --object contacts (or "
            "companies, deals)"
        )
    for wanted in sorted(linked):
        if wanted not in associable and not links_any:
            close = difflib.get_close_matches(wanted, associable, n=1)
            hint = f" (did you mean associate:{close[0]}?)" if close else ""
            raise UsageError(
                f"column associate:{wanted}: a {noun} can be linked to "
                + ", ".join(associable)
                + hint
                + "; linking to another object, a custom one too, needs the token (the portal "
                "is asked)"
            )
    if unused := sorted(set(by) - linked):
        obj = unused[0]
        raise UsageError(
            f"{obj}=... names no associate:{obj} column of the input; name one: "
            + _map_hint(obj, by[obj], list(header))
        )


def _map_hint(obj: str, prop: str, header: list[str]) -> str:
    """The ``--map`` that makes a link column of the column most likely meant: one whose
    name holds the property (``company_domain`` for ``domain``) or the object."""
    words = (prop.lower(), singular(obj))
    meant = next((h for h in header if any(w and w in h.lower() for w in words)), None)
    column = meant or "COLUMN"
    return f'--map "{column}={PREFIX}{obj}"'


def cell(to_object: str, raw: object, by: dict[str, str]) -> str:
    """A link cell as the values to link, ``;``-joined and normalised; raises
    :class:`FieldError` naming what is wrong."""
    prop = by.get(to_object)
    values = [v.strip() for v in str(raw).split(SEPARATOR) if v.strip()]
    if len(values) > _MAX_VALUES:
        raise FieldError(f"{PREFIX}{to_object}: more than {_MAX_VALUES} records in one cell")
    shown = []
    for value in values:
        if prop is None:
            if not _RECORD_ID.fullmatch(value):
                raise FieldError(
                    f"{PREFIX}{to_object}: {value[:80]!r} is not a record id; to link by "
                    f"another property pass --associate-by {to_object}=PROPERTY"
                )
        elif prop == "domain":
            value = domain(value)
        elif prop == "email":
            value = value.lower()
        if len(value) > 1000 or any(ord(c) < 32 for c in value):
            raise FieldError(f"{PREFIX}{to_object}: {value[:80]!r} cannot identify a record")
        shown.append(value)
    return SEPARATOR.join(shown)


def domain(text: str) -> str:
    """A domain as HubSpot keeps a company's: lower case, no scheme, path or ``www.``."""
    text = text.strip().lower()
    text = re.sub(r"^[a-z][a-z0-9+.-]*://", "", text).split("/", 1)[0]
    return text.removeprefix("www.")
