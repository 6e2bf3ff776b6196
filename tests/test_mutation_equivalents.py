"""`make mutation` counts a survivor as equivalent only for a stated reason: a change of case
in SQL outside its quoted values, or a rule naming the function and both lines."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "mutation", Path(__file__).resolve().parent.parent / "bench" / "mutation.py"
)
assert _SPEC is not None and _SPEC.loader is not None
mutation = importlib.util.module_from_spec(_SPEC)
sys.modules["mutation"] = mutation
_SPEC.loader.exec_module(mutation)

STORE = "bulkleads.jobstore.store.xǁJobStoreǁmark__mutmut_6"


@pytest.mark.parametrize(
    ("was", "became", "same"),
    [
        ('"SELECT guid FROM bundles WHERE x = ?"', '"select guid from bundles where x = ?"', True),
        ('"coalesce(?, status)"', '"COALESCE(?, STATUS)"', True),
        ("\"state IN ('failed', 'done')\"", "\"STATE IN ('FAILED', 'DONE')\"", False),
        ('"every row of it is invalid"', '"EVERY ROW OF IT IS INVALID"', False),
        ('"SELECT 1"', '"SELECT 2"', False),
    ],
)
def test_only_case_outside_quoted_values_of_sql_is_equivalent(
    was: str, became: str, same: bool
) -> None:
    assert mutation.sql_case_only(was, became) is same


def test_a_rule_holds_for_its_function_and_lines_only() -> None:
    pacer = "bulkleads.send.pacing.xǁPacerǁobserve__mutmut_37"
    status = (
        ["    if status is not None and 500 <= status < 600:"],
        ["    if status is not None and 500 <= status <= 600:"],
    )
    assert (
        mutation.equivalent_because(pacer, status) == "no HTTP status is 600: answers are 100-599"
    )
    other = "bulkleads.send.pacing.xǁPacerǁ_spacing__mutmut_1"
    assert mutation.equivalent_because(other, status) is None
    flipped = (
        ["    if status is not None and 500 <= status < 600:"],
        ["    if status is not None and 500 > status < 600:"],
    )
    assert mutation.equivalent_because(pacer, flipped) is None
    assert mutation.equivalent_because(STORE, ([], [])) is None


def test_names_give_the_function_a_rule_is_for() -> None:
    assert mutation._function(STORE) == "JobStore.mark"
    assert (
        mutation._function("bulkleads.hubspot.limits.x__from_http_date__mutmut_8")
        == "_from_http_date"
    )
    assert (
        mutation._function("bulkleads.send.pacing.xǁPacerǁ__init____mutmut_1") == "Pacer.__init__"
    )
