"""The flags that choose how a run talks to HubSpot, before an API makes sense of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from bulkleads.hubspot.http import AuthMode

# HubSpot's CRM API versions, the default first: date versions since March 2026; the legacy v3
# paths are unsupported from September 2027.
VERSIONS: Final = ("2026-09", "v3")


def crm_root(kind: str, version: str) -> str:
    """``/crm/objects/2026-09`` (``kind`` objects or properties), or legacy ``/crm/v3/objects``."""
    return f"/crm/v3/{kind}" if version == "v3" else f"/crm/{kind}/{version}"


@dataclass(frozen=True)
class ApiOptions:
    """``--auth``, ``--object``, ``--batch-size``, ``--id-property``, ``--date-field``,
    ``--api-version``: each
    API takes the ones it knows (None: not given)."""

    auth: AuthMode | None = None
    object: str = "contacts"
    batch_size: int = 100
    id_property: str | None = None
    date_fields: tuple[str, ...] = ("closedate",)
    version: str = VERSIONS[0]
    create: bool = False  # create the records --match finds no record for
