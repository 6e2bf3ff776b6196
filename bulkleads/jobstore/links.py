"""The job file's links: the associations a job makes (``associate:OBJECT`` columns), each
pair's state kept the moment an answer arrives, like the bundles' (see :mod:`.store`).

A link goes: found (its target's id, unless the file gave ids) -> checked (the record's
links read: one already there is ``skipped``, never sent) -> ``done`` when HubSpot's answer
names it. The sender works on :class:`Bundle` items; a link's is keyed
``guid<US>object<US>value`` and ordered by ``n``, the link's place in the job.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Final

from bulkleads.bundle import RESUMABLE, Bundle, Mark, State
from bulkleads.jobstore.schema import Transaction

PREFIX: Final = "associate:"  # a column that links each record to records of an object
SEPARATOR: Final = ";"  # several records in one cell
_US: Final = "\x1f"
# (to_object, value, to_id, state, reason, action) of one link, for the report
LinkRow = tuple[str, str, str | None, str, str | None, str | None]


def link_key(guid: str, to_object: str, value: str) -> str:
    return _US.join((guid, to_object, value))


def _split(key: str) -> list[str]:
    return key.split(_US)


class LinkStore:
    """The ``links`` table of an open job file (the :class:`.store.JobStore`'s connection)."""

    def __init__(self, db: sqlite3.Connection, tx: Callable[[], Transaction]) -> None:
        self._db = db
        self._tx = tx

    def any(self) -> bool:
        return self._db.execute("SELECT 1 FROM links LIMIT 1").fetchone() is not None

    # -- planning ---------------------------------------------------------------------------
    def take_from_bundles(self, by_id: dict[str, bool], *, from_by_id: bool) -> int:
        """Move each bundle's ``associate:OBJECT`` values out of its body into links (a value
        is the target's id when ``by_id[OBJECT]``, else a key to find). A bundle left with
        nothing to write is ``skipped`` unless its id is still to be read (``from_by_id``
        False). Returns how many links."""
        moved: list[tuple[str, str, str | None, str]] = []
        links: list[tuple[str, str, str, int, int, str | None, str | None]] = []
        cursor = self._db.execute(
            "SELECT guid, body, first_row FROM bundles WHERE state = 'pending' "
            "AND body LIKE ? ORDER BY first_row",
            (f'%"{PREFIX}%',),
        )
        for guid, body, first_row in cursor.fetchall():
            data = json.loads(body)
            for name in [k for k in data if k.startswith(PREFIX)]:
                to_object, raw = name[len(PREFIX) :], str(data.pop(name))
                for value in dict.fromkeys(v for v in raw.split(SEPARATOR) if v):
                    to_id = value if by_id.get(to_object, True) else None
                    from_id = guid if from_by_id else None
                    n = len(links) + 1  # the sender pages from 0: the first link is 1
                    links.append((guid, to_object, value, first_row, n, from_id, to_id))
            skip = not data and from_by_id
            moved.append(
                (
                    json.dumps(data, separators=(",", ":"), ensure_ascii=False),
                    State.SKIPPED if skip else State.PENDING,
                    "nothing to change" if skip else None,
                    guid,
                )
            )
        with self._tx():
            self._db.executemany(
                "UPDATE bundles SET body = ?, state = ?, reason = ? WHERE guid = ?", moved
            )
            self._db.executemany(
                "INSERT OR IGNORE INTO links (guid, to_object, value, first_row, n, from_id, "
                "to_id, state) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending')",
                links,
            )
        return len(links)

    def objects(self) -> list[str]:
        """The objects the job links to."""
        return [o for (o,) in self._db.execute("SELECT DISTINCT to_object FROM links ORDER BY 1")]

    # -- finding the records to link to -----------------------------------------------------
    def to_find(self, to_object: str, after: int, limit: int) -> list[Bundle]:
        """Distinct values of ``to_object`` still to find, each once, in order."""
        where, params = _to_find(to_object)
        cursor = self._db.execute(
            f"SELECT value, min(n) FROM links WHERE {where} "  # noqa: S608 - marks only
            "GROUP BY value HAVING min(n) > ? ORDER BY 2 LIMIT ?",
            (*params, after, limit),
        )
        return [Bundle(value, {}, n, 0) for value, n in cursor]

    def count_to_find(self, to_object: str) -> int:
        where, params = _to_find(to_object)
        query = f"SELECT count(DISTINCT value) FROM links WHERE {where}"  # noqa: S608
        return int(self._db.execute(query, params).fetchone()[0])

    def found(
        self, to_object: str, items: Iterable[tuple[str | None, str, str | None, str]]
    ) -> None:
        """``(to_id, state, reason, value)`` for each value looked for."""
        with self._tx():
            self._db.executemany(
                "UPDATE links SET to_id = ?, state = ?, reason = ? "
                "WHERE to_object = ? AND value = ? AND to_id IS NULL",
                ((i, s, r, to_object, v) for i, s, r, v in items),
            )

    # -- the records linked from ------------------------------------------------------------
    def settle_sources(self, noun: str) -> None:
        """Give each link the id of its record (read, or made by --create); a link whose record
        was not found, or could not be read or made, cannot be made."""
        with self._tx():
            self._db.execute(
                "UPDATE links SET from_id = (SELECT record_id FROM bundles b "
                "WHERE b.guid = links.guid) WHERE from_id IS NULL"
            )
            self._db.execute(
                "UPDATE links SET state = 'not_found', reason = ? WHERE from_id IS NULL "  # noqa: S608
                f"AND {_UNSENT} AND guid IN (SELECT guid FROM bundles "
                "WHERE state = 'not_found')",
                (f"no {noun} has this row's key, so there is nothing to link",),
            )
            self._db.execute(
                "UPDATE links SET state = 'failed', reason = ? WHERE from_id IS NULL "  # noqa: S608
                f"AND {_UNSENT} AND guid IN (SELECT guid FROM bundles "
                "WHERE state IN ('failed', 'invalid', 'skipped'))",
                (f"the {noun}'s id is unknown (it could not be read or made)",),
            )

    def to_check(self, to_object: str, after: int, limit: int) -> list[Bundle]:
        """Records whose existing links to ``to_object`` are still to read, each once."""
        cursor = self._db.execute(
            f"SELECT from_id, min(n) FROM links WHERE {_TO_CHECK} "  # noqa: S608
            "GROUP BY from_id HAVING min(n) > ? ORDER BY 2 LIMIT ?",
            (to_object, after, limit),
        )
        return [Bundle(from_id, {}, n, 0) for from_id, n in cursor]

    def count_to_check(self, to_object: str) -> int:
        query = f"SELECT count(DISTINCT from_id) FROM links WHERE {_TO_CHECK}"  # noqa: S608
        return int(self._db.execute(query, (to_object,)).fetchone()[0])

    def checked(
        self, to_object: str, existing: dict[str, dict[str, list[int]]], type_id: int | None
    ) -> None:
        """``{from_id: {to_id: type ids}}``, each record's links as read. A link there
        already (of ``type_id`` when one is asked, of any type otherwise) is ``skipped``;
        one whose pair is there without that type is sent, marked ``existed`` so that its
        undo removes the type and keeps the pair."""
        there: list[tuple[str, str, str]] = []
        paired: list[tuple[str, str, str]] = []
        for from_id, links in existing.items():
            for to_id, types in links.items():
                done = type_id is None or type_id in types
                (there if done else paired).append((to_object, from_id, to_id))
        with self._tx():
            self._db.executemany(
                "UPDATE links SET checked = 1 WHERE to_object = ? AND from_id = ?",
                ((to_object, from_id) for from_id in existing),
            )
            self._db.executemany(
                "UPDATE links SET state = 'skipped', reason = 'already there' "  # noqa: S608
                f"WHERE to_object = ? AND from_id = ? AND to_id = ? AND {_UNSENT}",
                there,
            )
            self._db.executemany(
                "UPDATE links SET existed = 1 "  # noqa: S608
                f"WHERE to_object = ? AND from_id = ? AND to_id = ? AND {_UNSENT}",
                paired,
            )

    def fail_sources(self, to_object: str, marks: Iterable[tuple[str, str | None, str]]) -> None:
        """``(state, reason, from_id)``: the links of records whose links could not be read."""
        with self._tx():
            self._db.executemany(
                "UPDATE links SET state = ?, reason = ? WHERE to_object = ? AND from_id = ? "  # noqa: S608
                f"AND checked IS NULL AND {_UNSENT}",
                ((s, r, to_object, f) for s, r, f in marks),
            )

    # -- linking and unlinking --------------------------------------------------------------
    def to_link(
        self,
        to_object: str,
        states: tuple[str, ...],
        after: int,
        limit: int,
        *,
        unlink: bool,
        existed: bool = False,
    ) -> list[Bundle]:
        """Links to make, or (``unlink``) to remove: those whose pair was there before the
        job (``existed``: only their type goes), or the rest."""
        where, params = _to_link(to_object, states, unlink=unlink, existed=existed)
        cursor = self._db.execute(
            f"SELECT guid, value, n, attempts, from_id, to_id FROM links "  # noqa: S608
            f"WHERE {where} AND n > ? ORDER BY n LIMIT ?",
            (*params, after, limit),
        )
        return [
            Bundle(link_key(guid, to_object, value), {"from": f, "to": t}, n, attempts)
            for guid, value, n, attempts, f, t in cursor
        ]

    def count_to_link(
        self, to_object: str, states: tuple[str, ...], *, unlink: bool, existed: bool = False
    ) -> int:
        where, params = _to_link(to_object, states, unlink=unlink, existed=existed)
        query = f"SELECT count(*) FROM links WHERE {where}"  # noqa: S608
        return int(self._db.execute(query, params).fetchone()[0])

    def mark(self, marks: Iterable[Mark]) -> None:
        """The sender's marks, keyed by :func:`link_key`."""
        with self._tx():
            self._db.executemany(
                "UPDATE links SET state = ?, status = coalesce(?, status), "
                "attempts = coalesce(?, attempts), reason = ? "
                "WHERE guid = ? AND to_object = ? AND value = ?",
                ((s, st, a, r, *_split(k)) for s, st, a, r, k in marks),
            )

    def move(self, from_states: tuple[str, ...], to_state: str, reason: str | None) -> None:
        marks = ",".join("?" * len(from_states))
        with self._tx():
            self._db.execute(
                f"UPDATE links SET state = ?, reason = ? WHERE state IN ({marks})",  # noqa: S608
                (to_state, reason, *from_states),
            )

    # -- reading back -----------------------------------------------------------------------
    def by_record(self) -> dict[str, list[LinkRow]]:
        """Each record's links, in order, for the report."""
        links: dict[str, list[LinkRow]] = {}
        for guid, *row in self._db.execute(
            "SELECT guid, to_object, value, to_id, state, reason, action FROM links ORDER BY n"
        ):
            links.setdefault(guid, []).append(tuple(row))
        return links

    def requests_left(self, find: int, check: int, link: int) -> tuple[int, int, int]:
        """The requests the links not yet made still need, as ``(finding, reading links,
        linking)``, at batches of ``find`` keys, ``check`` records and ``link`` links: the
        plan counts them, and they are a third of a migration's requests."""
        finding = self._db.execute(
            f"SELECT count(DISTINCT value) FROM links WHERE to_id IS NULL AND {_UNSENT} "  # noqa: S608
            "GROUP BY to_object"
        ).fetchall()
        checking = self._db.execute(
            "SELECT count(DISTINCT guid) FROM links "  # noqa: S608
            f"WHERE checked IS NULL AND action IS NULL AND {_UNSENT} GROUP BY to_object"
        ).fetchall()
        linking = self._db.execute(
            f"SELECT count(*) FROM links WHERE {_UNSENT} GROUP BY to_object, action"  # noqa: S608
        ).fetchall()
        return (
            sum(-(-n // find) for (n,) in finding),
            sum(-(-n // check) for (n,) in checking),
            sum(-(-n // link) for (n,) in linking),
        )

    def left(self) -> int:
        """Links a run of the job would still send (or find, or check)."""
        return int(self._db.execute(f"SELECT count(*) FROM links WHERE {_UNSENT}").fetchone()[0])  # noqa: S608

    def counts(self) -> Counter[tuple[str, str | None]]:
        """Links by ``(state, action)``."""
        query = "SELECT state, action, count(*) FROM links GROUP BY state, action"
        return Counter({(state, action): n for state, action, n in self._db.execute(query)})

    def made(self) -> list[tuple[str, str, str, str, str, int | None]]:
        """``(guid, to_object, value, from_id, to_id, existed)`` of every link the job made."""
        return list(
            self._db.execute(
                "SELECT guid, to_object, value, from_id, to_id, existed FROM links "
                "WHERE state = 'done' AND action IS NULL ORDER BY n"
            )
        )

    def add_unlinks(self, links: Iterable[tuple[str, str, str, int, str, str, int | None]]) -> None:
        """``(guid, to_object, value, first_row, from_id, to_id, existed)``: links an undo
        removes, numbered in the order given."""
        with self._tx():
            self._db.executemany(
                "INSERT OR IGNORE INTO links (guid, to_object, value, first_row, n, from_id, "
                "to_id, existed, checked, state, action) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, 1, 'pending', 'archive')",
                ((g, o, v, row, n, f, t, e) for n, (g, o, v, row, f, t, e) in enumerate(links, 1)),
            )


# Each queue's condition, shared by the query that takes from it and the one that counts it.
# A link not yet made is in any of the unconfirmed states a stop leaves (pending, deferred,
# not_sent, inflight): each queue takes them all, so a rerun takes up whatever a signal, the
# daily limit or a refused token left, at whichever step it stopped.
_UNSENT: Final = "state IN (" + ",".join(f"'{s}'" for s in RESUMABLE) + ")"
_TO_CHECK: Final = (
    "to_object = ? AND checked IS NULL AND from_id IS NOT NULL AND to_id IS NOT NULL "
    f"AND {_UNSENT} AND action IS NULL"
)


def _to_find(to_object: str) -> tuple[str, tuple[str, ...]]:
    marks = ",".join("?" * len(RESUMABLE))
    return f"to_object = ? AND to_id IS NULL AND state IN ({marks})", (to_object, *RESUMABLE)


def _to_link(
    to_object: str, states: tuple[str, ...], *, unlink: bool, existed: bool
) -> tuple[str, tuple[str, ...]]:
    """Links ready to link (their record's links read first) or to unlink (of one kind)."""
    if not unlink:
        ready = "action IS NULL AND checked = 1"
    else:
        ready = "action = 'archive' AND " + ("existed = 1" if existed else "existed IS NULL")
    marks = ",".join("?" * len(states))
    where = (
        f"to_object = ? AND state IN ({marks}) AND {ready} "
        "AND from_id IS NOT NULL AND to_id IS NOT NULL"
    )
    return where, (to_object, *states)
