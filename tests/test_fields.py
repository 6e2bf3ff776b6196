"""Field rules: guids, booleans, timestamps, clearing."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bulkleads.fields import CLEAR, FieldError, coerce, is_valid_guid, local_date, not_editable


@pytest.mark.parametrize("guid", ["8a41f2f22906b93a012906b9438f0008", "lead_1", "A-b"])
def test_plain_guids_are_valid(guid: str) -> None:
    """HubSpot-style guids pass."""
    assert is_valid_guid(guid)


@pytest.mark.parametrize(
    "guid",
    ["../x", "%2e%2e", "a?b", "a#b", "a/b", "a b", " ", "", "\u0430bc", "\uff41bc", "a\u200bb"],
)
def test_guids_that_could_leave_the_path_are_invalid(guid: str) -> None:
    """Traversal, query, fragment, white space and unicode look-alikes never reach a URL."""
    assert not is_valid_guid(guid)


@given(st.text(min_size=1, max_size=40))
def test_a_valid_guid_is_only_url_safe_ascii(text: str) -> None:
    """Whatever the text, a guid accepted as valid holds only [A-Za-z0-9_-]."""
    if is_valid_guid(text):
        assert all(c.isascii() and (c.isalnum() or c in "_-") for c in text)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("yes", True),
        ("Y", True),
        ("1", True),
        ("TRUE", True),
        ("no", False),
        ("n", False),
        ("0", False),
        ("False", False),
        (True, True),
    ],
)
def test_booleans_accept_the_usual_spellings(raw: object, expected: bool) -> None:
    """true/false/yes/no/y/n/1/0 in any case become JSON booleans."""
    assert coerce("isDeleted", raw) is expected


def test_boolean_cannot_be_cleared_or_guessed() -> None:
    """Clearing a boolean, or a word that is not one, names the field and asks for true/false."""
    with pytest.raises(FieldError, match="isCustomer cannot be cleared; give true or false"):
        coerce("isCustomer", CLEAR)
    with pytest.raises(FieldError, match="isCustomer: 'maybe' is not a boolean"):
        coerce("isCustomer", "maybe")


def test_timestamps_from_millis_dates_and_datetimes() -> None:
    """Epoch ms pass through; ISO dates are midnight in the chosen zone; offsets are honoured."""
    assert coerce("closedAt", "1323293954000") == 1323293954000
    assert coerce("closedAt", "2024-03-01") == 1709251200000
    assert coerce("closedAt", "2024-03-01T01:00:00+01:00") == 1709251200000
    berlin = ZoneInfo("Europe/Berlin")
    assert coerce("closedAt", "2024-03-01", berlin) == 1709251200000 - 3600_000
    assert coerce("customDateAt", 1709251200000) == 1709251200000


def test_timestamp_clear_is_zero_and_bad_values_are_named() -> None:
    """A cleared timestamp is 0 (an open lead); seconds and words are refused with a hint."""
    assert coerce("closedAt", CLEAR) == 0
    with pytest.raises(FieldError, match="looks like epoch seconds"):
        coerce("closedAt", "1709251200")
    with pytest.raises(FieldError, match="closedAt: 'tomorrow' is not a date"):
        coerce("closedAt", "tomorrow")


def test_strings_are_sent_as_given_and_cleared_to_empty() -> None:
    """Text fields keep the value exactly; clearing sends the API's unset value ""."""
    assert coerce("city", " Cambridge ") == " Cambridge "
    assert coerce("city", CLEAR) == ""
    with pytest.raises(FieldError, match="expected a plain value"):
        coerce("city", {"nested": 1})


def test_not_editable_list_is_overridable() -> None:
    """System fields are refused unless --allow-field names them; guid is the key, not a field."""
    assert not_editable(["score", "city", "guid"]) == ["score"]
    assert not_editable(["score"], frozenset({"score"})) == []


def test_an_impossible_local_date_names_the_format_given_not_a_flag_to_add() -> None:
    """31/02/2024 with --date-format %d/%m/%Y: the message says no such date, and does not
    tell the user to pass the flag they passed."""
    with pytest.raises(FieldError) as caught:
        local_date("closedAt", "31/02/2024", ("%d/%m/%Y",))
    assert "out of range" in str(caught.value)
    assert "or pass --date-format" not in str(caught.value)
    assert local_date("closedAt", "28/02/2024", ("%d/%m/%Y",)) == "2024-02-28T00:00:00"
