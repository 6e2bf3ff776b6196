"""Progress and summaries on stderr, with an injected clock."""

from __future__ import annotations

import json

import pytest

from bulkleads.report.screen import Reporter, _LogSink, setup_logging


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_log_every_ten_seconds_with_eta(capsys: pytest.CaptureFixture[str]) -> None:
    """Off a terminal, progress is one JSON line about every 10 s, with rate and total."""
    setup_logging("json", quiet=False, token=None)
    clock = Clock()
    sink = _LogSink(Reporter("json", quiet=False), 1000, "reading", "bytes", clock)
    clock.now = 5.0
    sink.set(100)  # too soon: nothing
    clock.now = 10.0
    sink.set(250)
    clock.now = 12.0
    sink.set(300)  # too soon again
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert len(lines) == 1
    assert lines[0]["event"] == "progress" and lines[0]["phase"] == "reading"
    assert (lines[0]["done"], lines[0]["total"], lines[0]["rate"]) == (250, 1000, 25.0)
    assert "about 30s left" in lines[0]["message"]


def test_quiet_shows_no_progress(capsys: pytest.CaptureFixture[str]) -> None:
    """--quiet: the progress sink is silent."""
    setup_logging("text", quiet=True, token=None)
    sink = Reporter("text", quiet=True).progress(10, "updating", "leads")
    for _ in range(10):
        sink.advance("done")
    sink.close()
    assert capsys.readouterr().err == ""


def test_control_characters_from_servers_are_shown_not_obeyed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A server message carrying terminal escapes (clear screen, recolour, a bell) prints as
    visible text in human output; line breaks of our own stay."""
    setup_logging("text", quiet=False, token=None, verbose=True)
    Reporter("text", quiet=False).warn("server said: \x1b[2J\x1b[31mred\x07 done\nnext line")
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err
    assert "\\x1b[2J\\x1b[31mred\\x07 done\nnext line" in err
