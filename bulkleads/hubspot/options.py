"""The flags that choose how a run talks to HubSpot, before an API makes sense of them."""

from __future__ import annotations

from dataclasses import dataclass

from .http import AuthMode


@dataclass(frozen=True)
class ApiOptions:
    """``--auth``, ``--object``, ``--batch-size``, ``--id-property``, ``--date-field``: each
    API takes the ones it knows (None: not given)."""

    auth: AuthMode | None = None
    object: str = "contacts"
    batch_size: int = 100
    id_property: str | None = None
    date_fields: tuple[str, ...] = ("closedate",)
