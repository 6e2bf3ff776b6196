"""--wait-for-daily-reset: the wait on an injected clock (bounded, said, interruptible), the
sandbox's day that starts again, and a job the daily limit stops three times finishing by
itself through the real CLI."""

from __future__ import annotations

import os
import signal
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bulkleads.pipeline.daily_wait import SystemClock, wait_for_reset
from bulkleads.sandbox.limits import DailyCap
from tests.conftest import json_lines, read_report, run_cli, write_seed

START = datetime(2026, 12, 7, 22, 0, tzinfo=UTC)


class FakeClock:
    """Time moves only when the wait sleeps; ``stop_at`` sleeps in, a signal arrives."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.time = START
        self.sleeps: list[float] = []
        self._stop_at = stop_at

    def now(self) -> datetime:
        return self.time

    def sleep(self, seconds: float) -> bool:
        self.sleeps.append(seconds)
        if self._stop_at is not None and len(self.sleeps) == self._stop_at:
            self.time += timedelta(seconds=seconds / 2)
            return True
        self.time += timedelta(seconds=seconds)
        return False


class Said:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, object]]] = []

    def info(self, message: str, **data: object) -> None:
        self.events.append((message, data))

    warn = info

    def names(self) -> list[object]:
        return [data.get("event") for _, data in self.events]


def test_the_wait_lasts_until_the_reset_and_a_minute_in_ticks_of_a_minute() -> None:
    clock, said = FakeClock(), Said()
    assert wait_for_reset(START + timedelta(hours=2), said, clock)  # type: ignore[arg-type]
    assert clock.time == START + timedelta(hours=2, minutes=1)
    assert max(clock.sleeps) == 60 and len(clock.sleeps) == 121
    assert said.names() == ["daily_wait", "daily_wait_over"]
    until = said.events[0][1]["until"]
    assert until == (START + timedelta(hours=2, minutes=1)).isoformat()


def test_a_short_wait_has_a_short_slack() -> None:
    """10 s to the reset: 2 % of it after (a sandbox's short day), not a minute."""
    clock = FakeClock()
    assert wait_for_reset(START + timedelta(seconds=10), Said(), clock)  # type: ignore[arg-type]
    assert sum(clock.sleeps) == 10.2


def test_a_reset_already_past_needs_no_sleep() -> None:
    clock = FakeClock()
    assert wait_for_reset(START - timedelta(seconds=5), Said(), clock)  # type: ignore[arg-type]
    assert clock.sleeps == []


def test_a_reset_more_than_a_day_away_is_not_waited_for() -> None:
    clock, said = FakeClock(), Said()
    far = START + timedelta(hours=25, seconds=1)
    assert not wait_for_reset(far, said, clock)  # type: ignore[arg-type]
    assert clock.sleeps == [] and said.names() == ["daily_wait_refused"]
    assert wait_for_reset(START + timedelta(hours=25), Said(), FakeClock())  # type: ignore[arg-type]


def test_a_signal_ends_the_wait_and_says_the_job_stays_resumable() -> None:
    clock, said = FakeClock(stop_at=3), Said()
    assert not wait_for_reset(START + timedelta(hours=1), said, clock)  # type: ignore[arg-type]
    assert len(clock.sleeps) == 3
    assert said.names() == ["daily_wait", "daily_wait_stopped"]
    assert "same command resumes" in str(said.events[0][0])


def test_sigterm_ends_the_machines_sleep_and_its_handlers_come_back() -> None:
    """The real clock: SIGTERM, sent once the sleep has taken the signal, ends a sleep of an
    hour at once; the handler before it is back afterwards."""
    before = signal.getsignal(signal.SIGTERM)
    taken = threading.Event()

    def send() -> None:
        while signal.getsignal(signal.SIGTERM) is before and not taken.wait(0.001):
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    sender = threading.Thread(target=send)
    sender.start()
    try:
        assert SystemClock().sleep(3600) is True
    finally:
        taken.set()
        sender.join()
    assert signal.getsignal(signal.SIGTERM) is before


def test_the_sandbox_day_starts_again_at_its_end() -> None:
    now = [1000.0]
    cap = DailyCap(2, day=10, clock=lambda: now[0])
    assert cap.try_accept() and cap.try_accept() and not cap.try_accept()
    assert cap.remaining() == 0 and cap.resets_at() == 1010
    now[0] = 1009.999
    assert not cap.try_accept()
    now[0] = 1010.0
    assert cap.remaining() == 2 and cap.try_accept() and cap.resets_at() == 1020


def test_a_job_the_daily_limit_stops_goes_on_after_each_reset(tmp_path: Path, sandbox) -> None:
    """A sandbox day of 2 s and 4 requests a day; 10 leads, one request each: the job waits
    for the reset at each stop, said in the log, and ends with every lead updated, exit 0."""
    guids = [f"{i:032x}" for i in range(1, 11)]
    box = sandbox(
        "--limit",
        "100",
        "--daily",
        "4",
        "--day-seconds",
        "2",
        seed=write_seed(tmp_path / "s.json", guids),
    )
    leads = tmp_path / "close.csv"
    leads.write_text("guid,city\n" + "".join(f"{g},C{i}\n" for i, g in enumerate(guids)))
    args = ("update", str(leads), "--base-url", box.url, "--no-backup", "--log-format", "json")
    done = run_cli(*args, "--wait-for-daily-reset", cwd=tmp_path)
    assert done.code == 0, done.stderr
    events = [e["event"] for e in json_lines(done.stderr)]
    assert events.count("daily_wait") >= 2 and events.count("daily_wait_over") >= 2
    assert {row["outcome"] for row in read_report(tmp_path / "close.report.csv")} == {"updated"}
    assert box.stats()["applied_total"] == 10
