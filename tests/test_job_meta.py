"""A job's metadata, typed: what older or damaged job files hold reads as defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from bulkleads.jobstore import meta as job_meta
from bulkleads.jobstore.meta import JobMeta
from bulkleads.jobstore.store import JobStore


def test_a_job_file_without_later_keys_reads_their_defaults(tmp_path: Path) -> None:
    """A job from an older version (no verify, pace, runs, key column) reads as their
    defaults; the API's saved options come back as it saved them."""
    with JobStore(tmp_path / "j.sqlite") as store:
        job_meta.write(store, {"job": "abc", "api": "crm-v3", "object": "deals", "backup": True})
        meta = JobMeta.read(store)
    assert (meta.job, meta.backup, meta.verify, meta.key_column) == ("abc", True, False, "guid")
    assert (meta.rate, meta.runs, meta.properties) == (None, (), None)
    assert meta.api_options == {"api": "crm-v3", "object": "deals"}


def test_a_value_of_the_wrong_type_reads_as_the_default_never_a_crash(tmp_path: Path) -> None:
    """A hand-edited job file (a list for the report, a string for the rate) reads as if the
    key were missing."""
    meta = JobMeta.of({"report": ["x"], "rate": "fast", "runs": {"a": 1}, "only_empty": "city"})
    assert (meta.report, meta.rate, meta.runs, meta.only_empty) == (None, None, (), ())


def test_writing_a_key_no_field_reads_is_refused(tmp_path: Path) -> None:
    """One home for every key: a misspelt one is a bug, caught where it is written."""
    with JobStore(tmp_path / "j.sqlite") as store, pytest.raises(ValueError, match="repot"):
        job_meta.write(store, {"repot": "r.csv"})
