"""What this machine remembers of a portal between runs: its rate limit and our latest requests.

Operators run jobs back to back: a dry run, then the run, then a retry or an undo. HubSpot's
rolling window still holds the requests of the run before when the next one starts; a pacer
that knows only its own run takes them for another client's and leaves them room long after
they are gone. Each run that sends therefore leaves, in the state directory, the times of its
requests still within a window and the limit the portal last stated; the next run on the same
portal (base URL and token) counts those requests as its own and starts at the portal's pace
without waiting for its first answer.

Requests of a run that is still going (another bulkleads process on the same portal) are not
taken as ours: they stay another client's, whose share the pacer leaves it. The file holds no
token and no piece of one: it is named by a hash of the base URL and the token. Failing to read
or write it never fails a run; it costs only the pace of the first window.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from bulkleads.hubspot.limits import Limit, RateHeaders
from bulkleads.jobstore.folder import process_running
from bulkleads.send.pacing import Pacer
from bulkleads.token import Token

KEEP_SECONDS: Final = 60.0  # longer than any window the pacer believes
LIMIT_FRESH_SECONDS: Final = 24 * 3600.0  # a limit seen longer ago is not taken on trust
_LOG: Final = logging.getLogger("bulkleads.send.portal_memory")
Request = tuple[float, float]  # (start, answer), seconds since the epoch


@dataclass
class PortalMemory:
    """One portal's memory, as loaded; :meth:`save` writes a pacer's back."""

    path: Path | None
    limit: Limit | None = None
    seen_at: float | None = None  # when the portal last stated its limit (epoch seconds)
    requests: list[Request] = field(default_factory=list)  # finished runs': ours to count
    _running: dict[int, list[Request]] = field(default_factory=dict)  # live processes' own

    @classmethod
    def load(cls, folder: Path, base_url: str, token: Token | None) -> PortalMemory:
        """The memory of the portal at ``base_url`` for ``token`` (empty without a token)."""
        if token is None:
            return cls(None)
        memory = cls(folder / "portals" / f"{portal_key(base_url, token)}.json")
        memory._read()
        return memory

    def _read(self) -> None:
        """The file is another program's input as much as ours (an editor, a full disk, a
        bad copy): what it says is checked as rate headers are, and a file that fails is set
        aside with one warning and replaced, so it can never stop a run or mislead a plan."""
        assert self.path is not None
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        except (OSError, UnicodeDecodeError) as exc:
            self._forget(f"unreadable: {exc}")
            return
        try:
            data = json.loads(text)
        except ValueError as exc:
            self._forget(f"not JSON: {exc}")
            return
        problem = _implausible(data, time.time())
        if problem is not None:
            self._forget(problem)
            return
        self._parse(data)

    def _forget(self, problem: str) -> None:
        """Start without the file and replace it by an empty memory."""
        _LOG.warning(
            "the remembered pace of this portal (%s) is not plausible (%s): ignored and replaced;"
            " this run starts at the API's documented pace until the portal's first answer",
            self.path,
            problem,
        )
        self.limit, self.seen_at, self.requests, self._running = None, None, [], {}
        self._write({"limit": None, "seen_at": None, "requests": []})

    def _parse(self, data: dict[str, Any]) -> None:
        now = time.time()
        limit, seen_at = data.get("limit"), data.get("seen_at")
        if limit is not None and seen_at is not None and now - seen_at <= LIMIT_FRESH_SECONDS:
            self.limit, self.seen_at = Limit(float(limit[0]), float(limit[1])), float(seen_at)
        for pid, start, answer in data["requests"]:
            if not (now - KEEP_SECONDS < float(answer) <= now + 1):
                continue
            if pid != os.getpid() and process_running(int(pid)):
                self._running.setdefault(int(pid), []).append((float(start), float(answer)))
            else:
                self.requests.append((float(start), float(answer)))

    def made(self, loop_now: float) -> list[Request]:
        """The finished runs' requests in loop time (``loop_now`` is the loop's clock now)."""
        shift = loop_now - time.time()
        return [(start + shift, answer + shift) for start, answer in self.requests]

    def save(self, pacer: Pacer, loop_now: float) -> None:
        """Keep the pacer's requests still within a window and the portal's limit, beside
        what live processes left; never fails the run."""
        if self.path is None:
            return
        now = time.time()
        shift = now - loop_now
        mine = [(round(s + shift, 4), round(a + shift, 4)) for s, a in pacer.history()]
        entries = [
            [pid, start, answer]
            for pid, requests in self._running.items()
            for start, answer in requests
            if answer > now - KEEP_SECONDS
        ]
        entries += [[os.getpid(), start, answer] for start, answer in mine]
        limit = pacer.portal
        data = {
            "limit": [limit.requests, limit.window] if limit else None,
            "seen_at": (now if pacer.last_answer is not None else self.seen_at) if limit else None,
            "requests": entries,
        }
        self._write(data)

    def _write(self, data: Mapping[str, object]) -> None:
        assert self.path is not None
        _write_json(self.path, data)


def _write_json(path: Path, data: Mapping[str, object]) -> None:
    """Replace ``path`` with ``data`` whole (a reader never sees half); a machine's memory
    that cannot be written costs a run only its first window's pace, never the run."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        _LOG.debug("%s not written (%s)", path, exc)


def portal_key(base_url: str, token: Token) -> str:
    """A portal's name in the state directory: a hash, so no file name holds the token."""
    return hashlib.sha256(f"{base_url}\n{token.reveal()}".encode()).hexdigest()[:24]


_MAX_PID: Final = 1 << 22  # Linux's pid_max ceiling; larger is no process id


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _implausible(data: object, now: float) -> str | None:
    """Why ``data`` is not a memory this module could have written (None when it could): the
    limit within what rate headers may state, times finite and not in the future, pids that
    can be process ids."""
    if not isinstance(data, dict):
        return "not a JSON object"
    limit, seen_at, requests = data.get("limit"), data.get("seen_at"), data.get("requests", [])
    if limit is not None:
        if not (isinstance(limit, list) and len(limit) == 2 and all(map(_number, limit))):
            return f"limit {limit!r} is not two numbers"
        stated = RateHeaders(max=int(limit[0]), interval_ms=round(limit[1] * 1000))
        if limit[0] != stated.max or stated.limit() is None:
            return f"limit {limit[0]:g} per {limit[1]:g} s is not one HubSpot states"
        if not (isinstance(seen_at, int | float) and _number(seen_at) and seen_at <= now + 60):
            return f"the limit's time {seen_at!r} is not a past time"
    if not isinstance(requests, list):
        return "its requests are not a list"
    for entry in requests:
        if not (isinstance(entry, list) and len(entry) == 3 and all(map(_number, entry))):
            return f"request {entry!r} is not [pid, start, answer]"
        if not (isinstance(entry[0], int) and 0 < entry[0] < _MAX_PID):
            return f"{entry[0]!r} is not a process id"
    return None


DEFINITIONS_FRESH: Final = 24 * 3600.0  # seconds remembered definitions are taken on trust


class Definitions:
    """A portal's property definitions as a run last read them, kept beside its memory
    (``<key>.definitions.json``), so that a run after a dry run or after last night's reads
    them only when they may have changed: one request less in a window that 200 requests fill
    exactly. A value the portal refuses (a 400 naming a property or an option) makes them
    forgotten, so the next run reads them again. Untrusted like the rest: a file that is not
    what this class writes is ignored."""

    def __init__(self, folder: Path, base_url: str, token: Token | None) -> None:
        name = f"{portal_key(base_url, token)}.definitions.json" if token is not None else None
        self.path = folder / "portals" / name if name else None

    def __repr__(self) -> str:
        return f"<Definitions {self.path}>"

    def recall(self, key: str, now: float | None = None) -> tuple[list[object], float] | None:
        """The definitions kept under ``key`` and when they were read, if fresh."""
        entry = self._table().get(key)
        if not isinstance(entry, dict):
            return None
        at, kept = entry.get("at"), entry.get("definitions")
        if not (_number(at) and isinstance(kept, list)):
            return None
        age = (time.time() if now is None else now) - float(at)  # type: ignore[arg-type]
        return (kept, float(at)) if 0 <= age <= DEFINITIONS_FRESH else None  # type: ignore[arg-type]

    def keep(self, key: str, definitions: list[object]) -> None:
        self._put(key, {"at": time.time(), "definitions": definitions})

    def forget(self, key: str) -> None:
        if key in self._table():
            self._put(key, None)

    def _table(self) -> dict[str, object]:
        if self.path is None:
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            return {}
        return data if isinstance(data, dict) else {}

    def _put(self, key: str, entry: object) -> None:
        if self.path is None:
            return
        table = {k: v for k, v in self._table().items() if k != key}
        if entry is not None:
            table[key] = entry
        _write_json(self.path, table)
