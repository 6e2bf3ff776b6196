"""Sleeping until the portal's daily limit starts again (``--wait-for-daily-reset``), so that a
cron job the limit deferred goes on by itself instead of leaving the rest to the next night.

The wait is bounded (a reset more than a day off is not believed), said in the log when it
starts and ends, and interruptible: Ctrl-C or SIGTERM ends it at once, and the job stays as
the limit left it, resumable by the same command. A little slack after the reset time allows
for the machine's clock being off HubSpot's: 2 % of the wait, at most a minute.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol

from bulkleads.hubspot.usage import reset_words
from bulkleads.report.screen import Reporter

MAX_WAIT: Final = timedelta(hours=25)  # a day in any time zone, and a daylight-saving hour
_SLACK_SHARE: Final = 0.02
_SLACK_MAX: Final = 60.0  # seconds
_TICK: Final = 60.0  # seconds between looks at the clock (a suspended laptop wakes late)


class Clock(Protocol):
    """What the wait needs of time: the time now (aware), and a sleep that a signal ends."""

    def now(self) -> datetime: ...

    def sleep(self, seconds: float) -> bool:
        """Sleep ``seconds``; True when a signal ended the sleep early."""
        ...


class SystemClock:
    """The machine's clock; SIGINT and SIGTERM end a sleep (and every sleep after it)."""

    def __init__(self) -> None:
        self._stopped = threading.Event()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> bool:
        with self._signals_stop():
            return self._stopped.wait(seconds)

    @contextlib.contextmanager
    def _signals_stop(self) -> Iterator[None]:
        def stop(signum: int, frame: object) -> None:
            self._stopped.set()

        kept = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in kept.items():
                signal.signal(sig, handler)


def wait_for_reset(reset: datetime, out: Reporter, clock: Clock) -> bool:
    """Sleep until ``reset`` (and its slack); True when it came, False when the wait was not
    made (a reset not believed) or a signal ended it."""
    left = reset - clock.now()
    if left > MAX_WAIT:
        out.warn(
            f"--wait-for-daily-reset: not waiting, the reset HubSpot gave ({reset.isoformat()}) "
            "is more than a day away; run the same command when the limit has started again",
            event="daily_wait_refused",
        )
        return False
    slack = min(_SLACK_MAX, max(left.total_seconds(), 0.0) * _SLACK_SHARE)
    until = reset + timedelta(seconds=slack)
    out.warn(
        f"waiting until the daily limit starts again {reset_words(until)} "
        "(--wait-for-daily-reset); Ctrl-C stops waiting and the same command resumes the job",
        event="daily_wait",
        until=until.isoformat(),
    )
    while (seconds := (until - clock.now()).total_seconds()) > 0:
        if clock.sleep(min(seconds, _TICK)):
            out.warn(
                "stopped waiting for the daily limit: the job stays resumable by the same command",
                event="daily_wait_stopped",
            )
            return False
    out.info("the daily limit has started again: going on", event="daily_wait_over")
    return True
