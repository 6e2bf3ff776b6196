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
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from .jobs import process_running
from .pacing import Pacer
from .ratelimit import Limit
from .token import Token

KEEP_SECONDS: Final = 60.0  # longer than any window the pacer believes
LIMIT_FRESH_SECONDS: Final = 24 * 3600.0  # a limit seen longer ago is not taken on trust
_LOG: Final = logging.getLogger("bulkleads.portal_memory")
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
        key = hashlib.sha256(f"{base_url}\n{token.reveal()}".encode()).hexdigest()[:24]
        memory = cls(folder / "portals" / f"{key}.json")
        memory._read()
        return memory

    def _read(self) -> None:
        assert self.path is not None
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            self._parse(data)
        except FileNotFoundError:
            return
        except (OSError, ValueError, TypeError, KeyError) as exc:
            _LOG.debug("portal memory %s unreadable (%s): starting without it", self.path, exc)
            self.limit, self.seen_at, self.requests, self._running = None, None, [], {}

    def _parse(self, data: dict[str, Any]) -> None:
        now = time.time()
        limit, seen_at = data.get("limit"), data.get("seen_at")
        if limit is not None and isinstance(seen_at, int | float):
            requests, window = float(limit[0]), float(limit[1])
            if requests > 0 and window > 0 and now - seen_at <= LIMIT_FRESH_SECONDS:
                self.limit, self.seen_at = Limit(requests, window), float(seen_at)
        for pid, start, answer in data.get("requests", []):
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
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:
            _LOG.debug("portal memory %s not written (%s)", self.path, exc)
