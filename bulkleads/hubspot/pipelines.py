"""Deal and ticket stages belong to pipelines: ``closedwon`` is "Closed won" of the default
deal pipeline, and every other pipeline has stages of its own (numeric ids). A stage HubSpot
is sent must be one of the record's pipeline, so a row that names its pipeline is checked
against that pipeline's stages, and a stage's label becomes that pipeline's stage id, before
the first request (``GET /crm/pipelines/{version}/{object}``, legacy ``/crm/v3/pipelines``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from bulkleads.fields import FieldError
from bulkleads.hubspot.http import check_base_url
from bulkleads.hubspot.reads import get_results
from bulkleads.token import Token

# The object's pipeline property and stage property.
PIPELINE_PROPERTIES: Final = {
    "deals": ("pipeline", "dealstage"),
    "tickets": ("hs_pipeline", "hs_pipeline_stage"),
}
_LOG: Final = logging.getLogger("bulkleads.pipelines")


@dataclass(frozen=True)
class Pipeline:
    id: str
    label: str
    stages: tuple[tuple[str, str], ...]  # (id, label), in the pipeline's order

    def stage(self, value: str) -> str | None:
        """The id of the stage ``value`` names (its id, or its label ignoring case)."""
        for stage_id, label in self.stages:
            if value == stage_id or value.lower() == label.lower():
                return stage_id
        return None

    def said(self) -> str:
        shown = ", ".join(f"{label} ({stage_id})" for stage_id, label in self.stages[:12])
        return f"{self.label} ({self.id}): {shown}"


def pipelines_path(version: str, crm_object: str) -> str:
    root = "/crm/v3/pipelines" if version == "v3" else f"/crm/pipelines/{version}"
    return f"{root}/{crm_object}"


def fetch_pipelines(
    base_url: str, token: Token, crm_object: str, *, version: str, timeout: float, patience: float
) -> tuple[Pipeline, ...]:
    """The object's pipelines; none when the token may not read them (a warning: stages
    are then checked only against the stage property's options)."""
    url = check_base_url(base_url) + pipelines_path(version, crm_object)
    what = f"the portal's {crm_object} pipelines"
    status, results = get_results(url, token, what, timeout=timeout, patience=patience)
    if results is None:
        _LOG.warning(
            "could not read the portal's %s pipelines (HTTP %s): stages are checked against "
            "the stage property's options only, whatever the record's pipeline",
            crm_object,
            status,
        )
        return ()
    return tuple(p for item in results if (p := _parse(item)) is not None)


def _parse(item: object) -> Pipeline | None:
    if not isinstance(item, Mapping) or not isinstance(item.get("id"), str):
        return None
    stages = item.get("stages")
    listed = [s for s in stages if isinstance(s, Mapping)] if isinstance(stages, list) else []
    listed.sort(key=display_order)
    return Pipeline(
        item["id"],
        str(item.get("label") or item["id"]),
        tuple((str(s.get("id")), str(s.get("label") or s.get("id"))) for s in listed),
    )


def stage_check(
    pipelines: tuple[Pipeline, ...], pipeline_property: str, stage_property: str
) -> Callable[[dict[str, object], dict[str, object]], dict[str, object]]:
    """A row's check: a stage must be one of its pipeline's (its label becomes its id
    there): the pipeline the row sets, else the one the record is in (``current``, once read);
    the pipeline, one of the portal's."""

    def check(fields: dict[str, object], current: dict[str, object]) -> dict[str, object]:
        stage = fields.get(stage_property)
        given = fields.get(pipeline_property) or current.get(pipeline_property)
        if not pipelines or given in (None, "") or stage in (None, ""):
            return fields
        pipeline = next(
            (
                p
                for p in pipelines
                if str(given) in (p.id, p.label) or str(given).lower() == p.label.lower()
            ),
            None,
        )
        if pipeline is None:
            known = "; ".join(f"{p.label} ({p.id})" for p in pipelines)
            raise FieldError(
                f"{pipeline_property}: {given!r} is not one of the pipelines ({known})"
            )
        stage_id = pipeline.stage(str(stage)) or pipeline.stage(_label_of(pipelines, str(stage)))
        if stage_id is None:
            label = _label_of(pipelines, str(stage))
            named = f"{label!r} ({stage})" if label != str(stage) else repr(stage)
            raise FieldError(
                f"{stage_property}: {named} is not a stage of the pipeline {pipeline.said()}"
            )
        if pipeline_property in fields:
            return {**fields, pipeline_property: pipeline.id, stage_property: stage_id}
        return {**fields, stage_property: stage_id}

    return check


def display_order(item: Mapping[str, object]) -> int:
    """The sort key of an option or a stage, as HubSpot shows them: its ``displayOrder``;
    -1 or none goes last (a stable sort keeps the answer's order among those)."""
    order = item.get("displayOrder")
    return order if isinstance(order, int) and order >= 0 else 1_000_000


def _label_of(pipelines: tuple[Pipeline, ...], stage_id: str) -> str:
    """A stage id's label (a label the options turned into another pipeline's id)."""
    for pipeline in pipelines:
        for sid, label in pipeline.stages:
            if sid == stage_id:
                return label
    return stage_id
