"""HubSpot's APIs, one module each behind one protocol; the caller never asks which it has.

``APIS[name]`` is the one place an API is chosen (from ``--api``, a profile, or a job's
metadata). An :class:`Api` owns everything that differs between APIs: its default pace, its
auth, its field rules, what it reads from the portal before planning, the target that turns
bundles into requests, the plan's example requests, its part of a job's identity and
metadata, and how ``bulkleads jobs`` names it.

- ``http``: what every API shares (status codes, the target protocol, the base URL's rule);
- ``leads_v1``: ``PUT /leads/v1/lead/{guid}``;
- ``crm``: the CRM objects API (object, key, version, what creating needs);
- ``crm_batch``: its batch requests and how each answer maps back to every record;
- ``properties``: a CRM portal's property definitions and the rules they make.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Protocol

from bulkleads.errors import UsageError
from bulkleads.fields import FieldRules
from bulkleads.hubspot.crm import Crm
from bulkleads.hubspot.http import AuthMode, Target
from bulkleads.hubspot.leads_v1 import LeadsV1
from bulkleads.hubspot.limits import Limit
from bulkleads.hubspot.options import ApiOptions
from bulkleads.hubspot.properties import Portal
from bulkleads.token import Token


class Api(Protocol):
    """One HubSpot API as a run uses it (frozen: a run never changes its API)."""

    @property
    def name(self) -> str:
        """What ``--api`` calls it."""
        ...

    @property
    def default_pace(self) -> Limit:
        """The pace until the portal's first answer states its own."""
        ...

    @property
    def auth(self) -> AuthMode: ...

    @property
    def reads_portal(self) -> bool:
        """Whether :meth:`read_portal` makes a request."""
        ...

    @property
    def creates(self) -> bool:
        """Whether a key no record has makes one (``--create``)."""
        ...

    @property
    def per_request(self) -> int:
        """Records one write (and one read) request carries."""
        ...

    def identity(self) -> dict[str, object]: ...

    def to_meta(self) -> dict[str, object]: ...

    def rules(self, portal: Portal | None) -> FieldRules: ...

    def read_portal(
        self, base_url: str, token: Token, *, timeout: float, patience: float
    ) -> Portal | None:
        """What the portal must tell before planning (None: nothing, or it could not); each
        answer within ``timeout`` seconds, pauses between attempts within ``patience``."""
        ...

    def target(self, base_url: str, token: Token) -> Target: ...

    def examples(self, base_url: str, bodies: Sequence[dict[str, object]]) -> list[str]: ...

    def describe(self, host: str) -> str: ...


APIS: Final[dict[str, Callable[[ApiOptions], Api]]] = {
    LeadsV1.name: LeadsV1.from_options,
    Crm.name: Crm.from_options,
}
_FROM_META: Final[dict[str, Callable[[Mapping[str, Any]], Api]]] = {
    LeadsV1.name: LeadsV1.from_meta,
    Crm.name: Crm.from_meta,
}
API_NAMES: Final = tuple(APIS)


# Flags (by parameter name) that only one API takes; given to another they would do nothing.
_OWN_FLAGS: Final[dict[str, dict[str, str]]] = {
    Crm.name: {
        "crm_object": "--object",
        "api_version": "--api-version",
        "batch_size": "--batch-size",
        "id_property": "--match",
        "create": "--create",
        "associate_by": "--associate-by",
        "association_label": "--association-label",
    },
}


def refuse_foreign_flags(name: str, given: set[str]) -> None:
    """A flag of another API is refused, not silently ignored."""
    for owner, flags in _OWN_FLAGS.items():
        for param, flag in flags.items():
            if owner != name and param in given:
                raise UsageError(
                    f"{flag} applies to the {owner} API (CRM objects): add --api {owner}"
                )


def choose(name: str, options: ApiOptions) -> Api:
    """The API named ``name`` (``--api``), set up from its flags."""
    try:
        return APIS[name](options)
    except KeyError:
        raise UsageError(f"unknown API {name!r}; use one of {', '.join(APIS)}") from None


def from_meta(saved: Mapping[str, Any]) -> Api:
    """The API a job was planned for, rebuilt from the options it saved (retry, undo, report)."""
    name = str(saved.get("api", LeadsV1.name))
    if name not in _FROM_META:
        raise UsageError(f"the job was made for an API this version does not know: {name!r}")
    return _FROM_META[name](saved)


__all__ = [
    "APIS",
    "API_NAMES",
    "Api",
    "ApiOptions",
    "AuthMode",
    "Portal",
    "choose",
    "from_meta",
    "refuse_foreign_flags",
]
