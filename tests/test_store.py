"""The job store's queries, one by one, on a small job file: what each selects, counts and
changes (the end-to-end tests reach them only through whole runs)."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from bulkleads.bundle import RESUMABLE, Mark, Read, State
from bulkleads.jobstore.schema import DamagedJob
from bulkleads.jobstore.store import JobStore


@pytest.fixture
def store(tmp_path: Path):
    """Five bundles g1..g5 (rows 1..5, g3 with two rows), every one pending, body {"city": ...};
    row 6 is invalid."""
    with JobStore(tmp_path / "job.sqlite") as job:
        job.add_rows(
            [
                (1, 2, "g1", '{"city":"A"}', "city", None),
                (2, 3, "g2", '{"city":"B"}', "city", None),
                (3, 4, "g3", '{"city":"C"}', "city", None),
                (4, 5, "g3", '{"zip":"1"}', "zip", None),
                (5, 6, "g4", '{"city":"D"}', "city", None),
                (6, 7, "g5", None, None, "closedAt: not a date"),
            ]
        )
        job.add_bundles(
            [
                ("g1", '{"city":"A"}', 1, State.PENDING, None),
                ("g2", '{"city":"B"}', 2, State.PENDING, None),
                ("g3", '{"city":"C","zip":"1"}', 3, State.PENDING, None),
                ("g4", '{"city":"D"}', 5, State.PENDING, None),
            ]
        )
        job.set_meta({"job": "abc"})
        job.finish_plan()
        yield job


def guids(bundles) -> list[str]:
    return [b.guid for b in bundles]


def test_valid_rows_come_grouped_by_key_in_row_order(store: JobStore) -> None:
    assert list(store.valid_rows_by_guid()) == [
        ("g1", 1, '{"city":"A"}'),
        ("g2", 2, '{"city":"B"}'),
        ("g3", 3, '{"city":"C"}'),
        ("g3", 4, '{"zip":"1"}'),
        ("g4", 5, '{"city":"D"}'),
    ]


def test_to_send_pages_through_in_input_order_after_a_row(store: JobStore) -> None:
    """`after_row` and `limit` page; the states asked filter."""
    assert guids(store.to_send(RESUMABLE, 0, 2)) == ["g1", "g2"]
    assert guids(store.to_send(RESUMABLE, 2, 2)) == ["g3", "g4"]
    assert guids(store.to_send(RESUMABLE, 5, 2)) == []
    store.mark([Mark(State.DONE, 200, 1, None, "g2")])
    assert guids(store.to_send((State.PENDING,))) == ["g1", "g3", "g4"]
    assert guids(store.to_send((State.DONE,))) == ["g2"]
    (bundle,) = store.to_send((State.DONE,))
    assert bundle.body == {"city": "B"} and bundle.first_row == 2 and bundle.attempts == 1


def test_to_send_and_count_filter_by_read_action_and_among(store: JobStore) -> None:
    """`read` True keeps the bundles backed up, False those not; `action` and `among` keep
    theirs; count agrees with to_send for every filter."""
    store.record_reads([Read('{"city":"x"}', '{"city":"A"}', State.PENDING, None, None, "7", "g1")])
    store.set_action([("create", None, "{}", "g2"), ("archive", "9", "{}", "g4")])
    cases = [
        ({"read": True}, ["g1", "g2", "g4"]),
        ({"read": False}, ["g3"]),
        ({"action": "update"}, ["g1", "g3"]),
        ({"action": "create"}, ["g2"]),
        ({"action": "archive"}, ["g4"]),
        ({"among": frozenset({"g3", "g4"})}, ["g3", "g4"]),
        ({"read": True, "action": "update"}, ["g1"]),
    ]
    for filters, expected in cases:
        assert guids(store.to_send(RESUMABLE, **filters)) == expected, filters
        assert store.count(RESUMABLE, **filters) == len(expected), filters


def test_reads_keep_the_backup_body_state_and_the_id_found(store: JobStore) -> None:
    store.record_reads(
        [
            Read('{"city":"old"}', '{"city":"A"}', State.PENDING, None, "kept", "101", "g1"),
            Read('{"city":"B"}', "{}", State.SKIPPED, "already up to date", None, None, "g2"),
        ]
    )
    store.record_reads(
        [Read('{"city":"old"}', '{"city":"A"}', State.PENDING, None, None, None, "g1")]
    )
    (g1,) = store.to_send((State.PENDING,), among=frozenset({"g1"}))
    assert g1.record_id == "101"  # None keeps the id stored
    assert dict((g, before) for g, _, before in store.reads()) == {
        "g1": {"city": "old"},
        "g2": {"city": "B"},
    }
    assert [g for g, _, _ in store.reads(frozenset({"g2"}))] == ["g2"]
    rows = {r.guid: r for r in store.report_rows()}
    assert rows["g2"].state == State.SKIPPED and rows["g2"].reason == "already up to date"


def test_mark_keeps_or_replaces_the_status_and_the_attempts(store: JobStore) -> None:
    """None keeps the attempts, and the status unless keep_status is False."""
    store.mark([Mark(State.FAILED, 503, 2, "server error", "g1")])
    store.mark([Mark(State.FAILED, None, None, "again", "g1")])
    row = next(r for r in store.report_rows() if r.guid == "g1")
    assert (row.state, row.status, row.attempts, row.reason) == ("failed", 503, 2, "again")
    store.mark([Mark(State.NOT_SENT, None, None, "token", "g1")], keep_status=False)
    row = next(r for r in store.report_rows() if r.guid == "g1")
    assert (row.state, row.status, row.attempts) == ("not_sent", None, 2)


def test_requeue_takes_what_can_succeed_and_counts_each_kind(store: JobStore) -> None:
    """not_sent; unconfirmed; failures on no answer, 429 or 5xx, or not kept (verified 0);
    with all_failed the final ones and not_found too; links alike."""
    store.mark(
        [
            Mark(State.NOT_SENT, None, None, "token", "g1"),
            Mark(State.FAILED, 503, 1, "5xx", "g2"),
            Mark(State.FAILED, 400, 1, "bad", "g3"),
            Mark(State.NOT_FOUND, 404, 1, "gone", "g4"),
        ]
    )
    assert store.requeue() == {"not_sent": 1, "transient": 1, "final": 0}
    assert store.bundle_states() == {"pending": 2, "failed": 1, "not_found": 1}
    store.mark([Mark(State.DONE, 200, 1, None, "g1")])
    store.record_verified([(0, "not kept", "g1")])
    assert store.requeue() == {"not_sent": 0, "transient": 1, "final": 0}
    assert store.requeue(all_failed=True) == {"not_sent": 0, "transient": 0, "final": 2}
    assert store.bundle_states() == {"pending": 4}
    assert next(r for r in store.report_rows() if r.guid == "g1").reason is None


def test_verify_marks_failed_what_did_not_stick_and_counts_what_did(store: JobStore) -> None:
    store.mark([Mark(State.DONE, 200, 1, None, g) for g in ("g1", "g2", "g3")])
    store.set_action([("archive", "9", "{}", "g3")])
    assert store.count_unverified() == 2  # an archive is never read back
    assert guids(store.to_verify()) == ["g1", "g2"]
    store.record_verified([(1, None, "g1"), (0, "not kept", "g2")])
    assert store.verified_count() == 1 and store.count_unverified() == 0
    assert store.bundle_states()["failed"] == 1
    assert [g for g, _, _ in store.updated()] == ["g1"]


def test_created_and_settle_created_touch_only_records_being_created(store: JobStore) -> None:
    store.set_action([("create", None, "{}", "g1"), (None, "55", None, "g2")])
    store.settle_created([("created", "77", None, "g1"), ("created", "88", None, "g2")])
    store.mark([Mark(State.DONE, 200, 1, None, "g1"), Mark(State.DONE, 200, 1, None, "g2")])
    assert store.created() == [("g1", "77")]
    assert store.settled() == Counter({"created": 1, "updated": 1})


def test_changed_since_names_the_records_that_no_longer_hold_what_was_written(
    store: JobStore,
) -> None:
    store.set_expect([('{"city":"A"}', "g1"), ('{"city":"B"}', "g2")])
    store.record_reads(
        [
            Read('{"city":"A"}', "{}", State.PENDING, None, None, None, "g1"),
            Read('{"city":"edited"}', "{}", State.PENDING, None, None, None, "g2"),
        ]
    )
    assert store.changed_since() == {"g2"}


def test_progress_move_and_counts(store: JobStore) -> None:
    store.mark([Mark(State.DONE, 200, 1, None, "g1"), Mark(State.INFLIGHT, None, None, None, "g2")])
    assert store.progress() == (1, 3)
    assert store.move((State.INFLIGHT,), State.UNCONFIRMED, "cut off") == 1
    assert store.progress() == (1, 2)
    assert store.row_count() == 6
    assert sorted(store.bundle_rows()) == [("g1", 1), ("g2", 2), ("g3", 3), ("g4", 5)]


def test_the_sample_is_seeded_sized_and_drawn_among_updates(store: JobStore) -> None:
    store.set_action([("archive", "9", "{}", "g4")])
    assert store.sample(RESUMABLE, 10) == {"g1", "g2", "g3"}  # all, the archive never drawn
    two = store.sample(RESUMABLE, 2)
    assert len(two) == 2 and two == store.sample(RESUMABLE, 2)  # the same draw twice
    draws = {store.sample(RESUMABLE, 1, seed=s) for s in range(40)}
    assert len(draws) == 3  # any of the three can be drawn


def test_report_rows_join_rows_to_their_bundle_and_notes(store: JobStore) -> None:
    store.add_notes([(3, "zip lost to row 4", "city")])
    store.mark([Mark(State.DONE, 200, 1, None, "g3")])
    rows = list(store.report_rows())
    assert [r.row for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[2].note == "zip lost to row 4" and rows[2].names == "city"
    assert rows[3].names == "zip" and rows[3].state == "done"
    assert rows[5].error == "closedAt: not a date" and rows[5].state is None


def test_an_empty_or_damaged_file_is_refused_by_check(tmp_path: Path) -> None:
    with JobStore(tmp_path / "empty.sqlite") as empty, pytest.raises(DamagedJob, match="holds no"):
        empty.check()
    (tmp_path / "junk.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(DamagedJob):
        JobStore(tmp_path / "junk.sqlite")


def test_an_older_job_file_gains_the_columns_added_since(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE bundles (guid TEXT PRIMARY KEY, body TEXT NOT NULL, first_row INTEGER "
        "NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, status INTEGER, "
        "reason TEXT) WITHOUT ROWID"
    )
    db.execute("INSERT INTO bundles VALUES ('g', '{}', 1, 'done', 1, 200, NULL)")
    db.commit()
    db.close()
    with JobStore(path) as store:
        assert store.created() == []  # the action column exists now
        assert json.loads(json.dumps(store.settled())) == {"updated": 1}


def test_a_fresh_plan_makes_unsent_rows_invalid_and_takes_its_values(
    store: JobStore, tmp_path: Path
) -> None:
    """replan_unsent: a row the fresh plan finds invalid becomes invalid when its bundle is
    not sent yet (kept when it is done or in flight); a bundle keeps only the fields still set
    validly, with the plan's values; one left with none is invalid."""
    store.mark([Mark(State.DONE, 200, 1, None, "g1"), Mark(State.INFLIGHT, None, 1, None, "g4")])
    with JobStore(tmp_path / "plan.sqlite") as plan:
        plan.add_rows(
            [
                (1, 2, "g1", None, None, "now invalid, but already done"),
                (2, 3, "g2", None, None, "city: 'B' is not one of its options"),
                (3, 4, "g3", '{"city":"c"}', "city", None),
                (4, 5, "g3", None, None, "zip: bad"),
                (5, 6, "g4", None, None, "in flight: left to the read"),
                (6, 7, "g5", None, None, "closedAt: not a date"),
            ]
        )
        plan.add_bundles([("g3", '{"city":"c"}', 3, State.PENDING, None)])
    assert store.replan_unsent(tmp_path / "plan.sqlite") == 2
    rows = {r.row: r for r in store.report_rows()}
    assert rows[1].error is None and rows[5].error is None
    assert rows[2].error == "city: 'B' is not one of its options" and rows[4].error == "zip: bad"
    states = {r.guid: (r.state, r.body) for r in store.report_rows() if r.error is None}
    assert states["g3"] == ("pending", '{"city": "c"}')
    assert store.bundle_states()["invalid"] == 1  # g2: every row of it invalid


def test_a_recheck_converts_what_is_unsent_and_refuses_what_it_cannot(store: JobStore) -> None:
    """recheck_unsent: values converted by the rules given; a bundle with a refused value is
    invalid, its rows saying why; with refused=True only the 400-failed bundles are looked at."""
    from bulkleads.fields import FieldError

    def convert(name: str, value: object) -> object:
        if value == "B":
            raise FieldError("city: 'B' is refused")
        return str(value).lower()

    store.mark([Mark(State.DONE, 200, 1, None, "g4")])
    assert store.recheck_unsent(convert) == 1
    bodies = {r.guid: (r.state, r.body, r.error) for r in store.report_rows()}
    assert bodies["g1"][:2] == ("pending", '{"city": "a"}')
    assert (
        bodies["g2"][2]
        == "city: 'B' is refused (checked against the portal's definitions read again)"
    )
    assert bodies["g4"][:2] == ("done", '{"city":"D"}')  # sent: untouched
    store.mark([Mark(State.FAILED, 400, 1, "refused", "g4")])
    assert store.recheck_unsent(lambda n, v: v, refused=True) == 0
    assert store.recheck_unsent(convert, refused=True) == 0  # "D" converts: stays failed


def test_a_whole_job_file_passes_its_check(store: JobStore) -> None:
    store.check()  # raises DamagedJob otherwise


def test_settled_names_what_became_of_each_record(store: JobStore) -> None:
    """Each state in the words a run's two snapshots are compared in; what is not settled yet
    (pending, deferred) is not counted."""
    store.add_bundles(
        [
            ("g6", "{}", 7, State.NOT_FOUND, None),
            ("g7", "{}", 8, State.UNCONFIRMED, None),
            ("g8", "{}", 9, State.INVALID, None),
            ("g9", "{}", 10, State.DEFERRED, None),
            ("g10", "{}", 11, State.DONE, None),
        ]
    )
    store.mark(
        [Mark(State.FAILED, 400, 1, "no", "g1"), Mark(State.SKIPPED, None, None, "so", "g2")]
    )
    store.mark([Mark(State.DONE, 200, 1, None, g) for g in ("g3", "g4")])
    store.set_action([("created", "5", None, "g3"), ("archive", "6", None, "g4")])
    assert store.settled() == Counter(
        {
            "failed": 1,
            "skipped": 1,
            "created": 1,
            "archived": 1,
            "not_found": 1,
            "unconfirmed": 1,
            "invalid": 1,
            "updated": 1,
        }
    )


def test_to_verify_pages_through_the_updates_in_input_order(store: JobStore) -> None:
    store.mark([Mark(State.DONE, 200, 2, None, g) for g in ("g1", "g2", "g3", "g4")])
    first = store.to_verify(0, 2)
    assert guids(first) == ["g1", "g2"] and first[0].attempts == 2
    assert first[1].body == {"city": "B"} and first[1].first_row == 2
    assert guids(store.to_verify(2, 2)) == ["g3", "g4"]
    store.record_verified([(1, None, "g3")])
    assert guids(store.to_verify()) == ["g1", "g2", "g4"]


def test_report_rows_carry_the_bundles_values_and_the_rows_own(store: JobStore) -> None:
    store.record_reads(
        [Read('{"city":"was"}', '{"city":"A"}', State.PENDING, None, "kept: x", "9", "g1")]
    )
    store.set_action([("created", None, None, "g1")])
    row = next(store.report_rows())
    assert (row.row, row.line, row.guid, row.names) == (1, 2, "g1", "city")
    assert (row.body, row.before, row.bundle_note) == ('{"city":"A"}', '{"city":"was"}', "kept: x")
    assert (row.fields, row.own_names, row.action, row.record_id) == (
        '{"city":"A"}',
        "city",
        "created",
        "9",
    )
    assert (row.attempts, row.status, row.reason) == (0, None, None)
