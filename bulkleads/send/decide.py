"""What reading a lead decides before it is written: what to send, what is already so, what to
keep, and the values to back up. Pure functions; the read phase stores what they return.
Values are compared as HubSpot shows them (:func:`bulkleads.fields.same`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Final

from bulkleads.fields import same

ALL: Final = "all"  # --only-empty all


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one lead once its current values are known."""

    body: dict[str, object]  # the fields to send: only those that change
    before: dict[str, object]  # the lead's current value of every planned field
    skip: str | None = None  # why nothing is sent; None when ``body`` is sent
    note: str | None = None  # values kept because of --only-empty


def decide(
    planned: dict[str, object],
    current: dict[str, object],
    *,
    only_empty: Collection[str] = (),
    expect: dict[str, object] | None = None,
    force: bool = False,
    is_empty: Callable[[str, object], bool] | None = None,
) -> Decision:
    """The body to send for ``planned`` given the lead's ``current`` values.

    ``expect`` (undo) holds the values the lead must still hold: when another client changed
    one since, the lead is skipped naming the field and both values, unless ``force``."""
    empty = is_empty or _blank
    before = {name: current.get(name) for name in planned}
    if expect and not force:
        moved = [
            f"{name} is now {_show(current.get(name))}, the job wrote {_show(value)}"
            for name, value in expect.items()
            if not same(current.get(name), value)
        ]
        if moved:
            return Decision({}, before, "changed since the job: " + "; ".join(moved))
    body: dict[str, object] = {}
    kept: list[str] = []
    everything = ALL in only_empty
    for name, value in planned.items():
        now = current.get(name)
        if same(now, value):
            continue
        if (everything or name in only_empty) and not empty(name, now):
            kept.append(f"{name} {_show(now)}")
            continue
        body[name] = value
    note = "kept by --only-empty: " + "; ".join(kept) if kept else None
    if not body:
        return Decision({}, before, note or "already up to date", None)
    return Decision(body, before, None, note)


def _blank(name: str, value: object) -> bool:
    return value is None or value == ""


def _show(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."
