"""The job store's queries, one by one, on a small job file: what each selects, counts and
changes (the end-to-end tests reach them only through whole runs)."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from bulkleads.bundle import RESUMABLE, Mark, Read, State
from bulkleads.jobstore.schema import DamagedJob, StateDiskFull
from bulkleads.jobstore.store import SAMPLE_SEED, JobStore, faults_said


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
    assert guids(store.to_send((State.PENDING,), 0, 10)) == ["g1", "g3", "g4"]
    assert guids(store.to_send((State.DONE,), 0, 10)) == ["g2"]
    (bundle,) = store.to_send((State.DONE,), 0, 10)
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
        assert guids(store.to_send(RESUMABLE, 0, 10, **filters)) == expected, filters
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
    (g1,) = store.to_send((State.PENDING,), 0, 10, among=frozenset({"g1"}))
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
    assert guids(store.to_verify(0, 10)) == ["g1", "g2"]
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
    assert guids(store.to_verify(0, 10)) == ["g1", "g2", "g4"]


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


def test_a_record_created_before_its_id_was_recorded_counts_as_created(store: JobStore) -> None:
    """A kill between the create's answer and the id's record leaves action "create" done:
    created, with the records whose id is recorded."""
    store.set_action([("create", None, "{}", "g1"), ("create", None, "{}", "g2")])
    store.mark([Mark(State.DONE, 200, 1, None, g) for g in ("g1", "g2")])
    store.settle_created([("created", "77", None, "g2")])
    assert store.settled() == Counter({"created": 2})


def test_a_file_that_is_no_job_file_is_refused_naming_it_and_why(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(DamagedJob) as refused:
        JobStore(junk)
    assert f"the job file {junk} is damaged (file is not a database)" in str(refused.value)
    with JobStore(tmp_path / "empty.sqlite") as empty, pytest.raises(DamagedJob) as empty_one:
        empty.check()
    assert (
        f"{tmp_path / 'empty.sqlite'} is damaged (it holds no planned job (empty, or not a"
        in str(empty_one.value)
    )


def test_a_job_file_that_cannot_be_opened_is_a_disk_fault_not_a_damaged_job(
    tmp_path: Path,
) -> None:
    """SQLite cannot open a folder as a file (its "cannot open" code, as for a read-only or
    missing folder): the folder is at fault, the job is not damaged."""
    with pytest.raises(StateDiskFull) as refused:
        JobStore(tmp_path)
    assert f"cannot write the job file {tmp_path} (unable to open database file)" in str(
        refused.value
    )


def test_a_write_refused_by_the_disk_names_the_file(store: JobStore) -> None:
    store._db.execute("PRAGMA query_only = ON")  # writes fail as on a read-only disk
    with pytest.raises(StateDiskFull) as refused:
        store.mark([Mark(State.DONE, 200, 1, None, "g1")])
    assert f"cannot write the job file {store.path} (" in str(refused.value)


def damage(path: Path, offset: int, data: bytes) -> None:
    with path.open("r+b") as file:
        file.seek(offset)
        file.write(data)


def a_job_of_many_pages(path: Path) -> Path:
    with JobStore(path) as job:
        job.add_rows(
            [(i, i + 1, f"g{i}", '{"city":"%s"}' % ("x" * 60), "city", None) for i in range(3000)]
        )
        job.add_bundles([(f"g{i}", '{"city":"A"}', i, State.PENDING, None) for i in range(3000)])
        job.set_meta({"job": "abc"})
        job.finish_plan()
        job._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def test_check_names_the_first_three_faults_sqlite_finds(tmp_path: Path) -> None:
    """Pages past the first zeroed under an open job: SQLite lists a hundred faults (as one
    row of lines); the message names the first three and how many more."""
    path = a_job_of_many_pages(tmp_path / "job.sqlite")
    with JobStore(path) as job:
        damage(path, 4096, bytes(path.stat().st_size - 4096))
        (listed,) = [r[0] for r in job._db.execute("PRAGMA quick_check")]
        faults = listed.splitlines()[1:]
        assert listed.startswith("*** in database main ***") and len(faults) > 3
        with pytest.raises(DamagedJob) as refused:
            job.check()
    shown = "; ".join(faults[:3])
    assert f"{path} is damaged ({shown}; {len(faults) - 3} more);" in str(refused.value)


def test_check_names_the_error_sqlite_raises(tmp_path: Path) -> None:
    path = a_job_of_many_pages(tmp_path / "job.sqlite")
    with JobStore(path) as job:
        damage(path, 0, bytes([0xAB]) * 8192)
        with pytest.raises(DamagedJob) as refused:
            job.check()
        assert repr(job) == "<JobStore job.sqlite>"
    assert f"the job file {path} is damaged (database disk image is malformed);" in str(
        refused.value
    )


def test_every_filter_holds_with_among_and_the_expected_values_come_back(store: JobStore) -> None:
    store.record_reads(
        [Read('{"city":"x"}', '{"city":"A"}', State.PENDING, None, None, None, "g1")]
    )
    store.set_expect([('{"city":"x"}', "g1")])
    among = frozenset({"g1", "g2"})
    assert guids(store.to_send(RESUMABLE, 0, 10, read=True, among=among)) == ["g1"]
    assert store.count(RESUMABLE, read=True, among=among) == 1
    assert store.count(RESUMABLE, read=False, among=among) == 1
    g1, g2 = store.to_send(RESUMABLE, 0, 10, among=among)
    assert g1.expect == {"city": "x"} and g2.expect is None


def test_updated_gives_what_was_sent_and_no_backup_for_a_damaged_cell(store: JobStore) -> None:
    """A body or backup cell that is not a JSON object (a damaged job file) gives no backup:
    never a crash, never a value made up."""
    store.record_reads(
        [
            Read('{"city":"was"}', '{"city":"A"}', State.PENDING, None, None, None, "g1"),
            Read('{"city":"was"}', '["A"]', State.PENDING, None, None, None, "g2"),
            Read("[1, 2]", '{"city":"C"}', State.PENDING, None, None, None, "g3"),
        ]
    )
    store.mark([Mark(State.DONE, 200, 1, None, g) for g in ("g1", "g2", "g3")])
    assert list(store.updated()) == [
        ("g1", {"city": "A"}, {"city": "was"}),
        ("g2", {}, None),
        ("g3", {"city": "C"}, None),
    ]


def test_progress_of_a_job_with_nothing_done(store: JobStore) -> None:
    assert store.progress() == (0, 4)


def test_the_seeded_draw_gives_each_record_an_equal_chance(store: JobStore) -> None:
    """One of two drawn: over 1,000 seeds the second is drawn about half the time (a draw
    among three numbers for two records would give it a third)."""
    store.set_action([("archive", "9", "{}", g) for g in ("g3", "g4")])
    second = sum(store.sample(RESUMABLE, 1, seed=s) == {"g2"} for s in range(1000))
    assert 450 <= second <= 550
    assert store.sample(RESUMABLE, 1) == store.sample(RESUMABLE, 1, seed=SAMPLE_SEED)
    first = store.sample(RESUMABLE, 1, seed=7)
    assert all(store.sample(RESUMABLE, 1, seed=7) == first for _ in range(30))  # the seed rules


def test_a_recheck_of_refused_bundles_goes_through_every_one(store: JobStore) -> None:
    """refused=True: the bundles a 400 failed, every one, by the property's name."""
    from bulkleads.fields import FieldError

    def convert(name: str, value: object) -> object:
        if name == "city" and value in ("A", "B"):
            raise FieldError(f"{name}: {value!r} is refused")
        return value

    store.mark([Mark(State.FAILED, 400, 1, "refused", g) for g in ("g1", "g2", "g4")])
    store.mark([Mark(State.FAILED, 503, 1, "busy", "g3")])
    assert store.recheck_unsent(convert, refused=True) == 2
    errors = {r.guid: r.error for r in store.report_rows()}
    assert errors["g1"] == (
        "city: 'A' is refused (checked against the portal's definitions read again)"
    )
    assert errors["g2"] and not errors["g3"] and not errors["g4"]
    assert store.bundle_states() == {"invalid": 2, "failed": 2}  # a 503 is no refusal


def test_a_bundle_the_fresh_plan_leaves_empty_says_so(store: JobStore, tmp_path: Path) -> None:
    with JobStore(tmp_path / "plan.sqlite") as plan:
        plan.add_rows([(2, 3, "g2", None, None, "city: gone")])
        plan.add_bundles(
            [
                ("g1", '{"city":"A"}', 1, State.PENDING, None),
                ("g3", '{"city":"C","zip":"1"}', 3, State.PENDING, None),
                ("g4", '{"city":"D"}', 5, State.PENDING, None),
            ]
        )
    store.replan_unsent(tmp_path / "plan.sqlite")
    (g2,) = [r for r in store.report_rows() if r.guid == "g2"]
    assert g2.error == "city: gone"
    assert store.bundle_states()["invalid"] == 1
    with store._db:
        reason = store._db.execute("SELECT reason FROM bundles WHERE guid = 'g2'").fetchone()[0]
    assert reason == "every row of it is invalid"


@pytest.mark.parametrize(
    ("result", "said"),
    [
        (["Page 4: bad"], "Page 4: bad"),
        (["a", "b", "c"], "a; b; c"),
        (["a", "b", "c", "d", "e"], "a; b; c; 2 more"),
        (
            ["*** in database main ***\nPage 8: x\nPage 7: y\nPage 6: z\nPage 5: w"],
            "Page 8: x; Page 7: y; Page 6: z; 1 more",
        ),
    ],
)
def test_the_integrity_check_is_said_in_a_line(result: list[str], said: str) -> None:
    assert faults_said(result) == said


def test_a_move_back_writes_only_after_its_clear_and_either_step_resumes(store: JobStore) -> None:
    """g1 moves back: the write waits while its clear is unconfirmed (a run stopped there
    clears again), goes once it is; g3, never read, and g4, failed, are not cleared."""
    store.record_reads(
        [
            Read('{"city":"x"}', '{"city":"A"}', State.PENDING, None, None, f"7{g}", g)
            for g in ("g1", "g2", "g4")
        ]
    )
    store.mark([Mark(State.PENDING, 503, 2, None, "g1")])
    store.clear_first([(["lifecyclestage"], g) for g in ("g1", "g3", "g4")])
    store.mark([Mark(State.FAILED, 400, 1, "no", "g4")])
    ready = {"read": True, "action": "update"}
    assert guids(store.to_send(RESUMABLE, 0, 10, **ready)) == ["g2"]
    (clear,) = store.to_clear(RESUMABLE, 0, 10)
    assert (clear.guid, clear.body, clear.first_row) == ("g1", {"lifecyclestage": ""}, 1)
    assert (clear.attempts, clear.expect, clear.record_id) == (2, None, "7g1")
    assert store.count(RESUMABLE, read=True, action="clear") == 1
    store.cleared(["g1"])
    assert store.to_clear(RESUMABLE, 0, 10) == []
    assert guids(store.to_send(RESUMABLE, 0, 10, **ready)) == ["g1", "g2"]
    assert store.moved_back() == 0
    store.mark([Mark(State.DONE, 200, 1, None, "g1")])
    assert store.moved_back() == 1


def test_a_bundle_found_invalid_after_its_read_fails_its_rows_with_why(store: JobStore) -> None:
    assert store.invalidate([("dealstage: not of its pipeline", "g3")]) == 2
    assert store.invalidate([]) == 0
    errors = {r.row: r.error for r in store.report_rows()}
    assert errors[3] == errors[4] == "dealstage: not of its pipeline"
    assert errors[1] is None and errors[6] == "closedAt: not a date"  # others untouched
    assert store.bundle_states() == {"pending": 3, "invalid": 1}
