"""Ctrl-C and SIGTERM during a run: the first stops taking work and lets the requests in flight
finish, the second abandons them (their records stay ``unconfirmed``), the third exits at once.

The presses are counted across the whole run: while it sends (handlers on the event loop, which
stop every sender at work and keep a phase not yet started from starting) and while it writes
the report after (plain handlers), so a third press exits with the same words whenever it
comes, and never as a bare ``KeyboardInterrupt`` halfway through the report.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Iterator
from types import FrameType
from typing import Any, Final

from bulkleads.errors import EXIT_ABORTED
from bulkleads.send.options import Say
from bulkleads.send.pool import Sender, SendStats

_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)


class Interrupts:
    """One run's count of Ctrl-C and SIGTERM, and the senders they stop."""

    def __init__(self, out: Say, command: str) -> None:
        self._out = out
        self._command = command
        self.taken = 0
        self.active: list[Sender] = []  # the senders a press stops
        self.total: SendStats | None = None  # the run's stats: a stop between phases is said

    def __repr__(self) -> str:
        return f"<Interrupts taken={self.taken} active={len(self.active)}>"

    def hit(self, signum: int, *, plain: bool = False) -> None:
        """One press; ``plain``: outside the loop (writing the report), where the third exits
        by raising, so that the half-written report is removed on the way out."""
        self.taken += 1
        name = signal.Signals(signum).name
        if self.taken >= 3:
            self._out.warn(
                f"{name} a third time: exiting now without a report; the job is consistent, "
                f"and running the same command resumes it: {self._command}",
                event="signal",
                signal=name,
                again=True,
            )
            if plain:
                raise SystemExit(EXIT_ABORTED)
            os._exit(EXIT_ABORTED)  # on the loop: nothing to finish, nothing half written
        if self.taken == 2:
            self._out.warn(
                f"{name} again: abandoning the requests in flight (their records stay "
                "unconfirmed until read back) and writing the report (a third exits at once)",
                event="signal",
                signal=name,
                again=True,
            )
            for sender in self.active:
                sender.abandon()
            return
        self._out.warn(
            f"{name}: finishing requests in flight, then writing the report "
            "(press Ctrl-C again to stop waiting for them)",
            event="signal",
            signal=name,
            again=False,
        )
        if self.total is not None and self.total.stop_reason is None:
            self.total.stop_reason, self.total.stop_detail = "signal", f"stopped by {name}"
        for sender in self.active:
            sender.stop("signal", f"stopped by {name}")

    @contextlib.contextmanager
    def on_loop(self, total: SendStats) -> Iterator[None]:
        """While the run sends, on the running loop; afterwards, when a press was taken, the
        count goes on in plain handlers until :meth:`done`."""
        loop = asyncio.get_running_loop()
        self.total = total
        for sig in _SIGNALS:
            loop.add_signal_handler(sig, self.hit, sig)
        try:
            yield
        finally:
            for sig in _SIGNALS:
                loop.remove_signal_handler(sig)
            if self.taken:
                for sig in _SIGNALS:
                    signal.signal(sig, self._plain)

    def done(self) -> None:
        """The report is written: Ctrl-C means what it always means again."""
        if self.taken:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def _plain(self, signum: int, frame: FrameType | None, *_: Any) -> None:
        self.hit(signum, plain=True)
