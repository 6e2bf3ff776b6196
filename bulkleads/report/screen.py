"""What a person (or cron's mail) sees on stderr: the plan, progress, and the summary.

Data goes to the report file; everything here goes to stderr. With ``--log-format json`` every
message is one JSON object per line, for log collectors. Progress is a rich bar on a terminal,
and one log line about every ten seconds otherwise. No token ever reaches this module: messages
pass through the redacting log filter, and the example requests print ``***`` in its place.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from bulkleads.fields import plural
from bulkleads.hubspot.limits import Limit
from bulkleads.plan.options import PlanSummary
from bulkleads.report.notify import notify
from bulkleads.report.rows import RowOutcome
from bulkleads.report.summary import write_summary
from bulkleads.send.pool import SendStats
from bulkleads.token import RedactingFilter, Token

LogFormat = Literal["text", "json"]
LOG_FORMAT_VAR: Final = "BULKLEADS_LOG_FORMAT"
LOGGER: Final = logging.getLogger("bulkleads")
_PROGRESS_EVERY: Final = 10.0


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "data", {}))
        if record.exc_text:
            entry["traceback"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False, default=str)


# C0 controls but the line break, DEL and C1 controls: what a terminal takes as commands.
_CONTROLS: Final = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def escape_controls(text: str) -> str:
    """``text`` with control characters shown, not obeyed: a server's message cannot move
    the cursor, recolour or retitle the operator's terminal."""
    return _CONTROLS.sub(lambda m: repr(m.group())[1:-1], text)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return escape_controls(super().format(record))


def setup_logging(
    fmt: LogFormat, *, quiet: bool, token: Token | None, verbose: bool = False
) -> None:
    """Log to stderr; silence httpx's request log, which prints full URLs with the token."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _TextFormatter("%(message)s"))
    if token is not None:
        handler.addFilter(RedactingFilter(token))
    LOGGER.handlers[:] = [handler]
    LOGGER.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
    LOGGER.propagate = False
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
        logging.getLogger(noisy).propagate = False


OUTCOMES: Final = tuple(RowOutcome)


def print_error(message: str, *, kind: str, exit_code: int, fmt: LogFormat) -> None:
    """An error that ends the command, on stderr: one line of text, or one JSON object."""
    if fmt == "json":
        entry = {
            "time": datetime.now(UTC).astimezone().strftime("%Y-%m-%dT%H:%M:%S%z"),
            "level": "error",
            "event": "error",
            "type": kind,
            "message": message,
            "exit_code": exit_code,
        }
        print(json.dumps(entry, ensure_ascii=False), file=sys.stderr)
    else:
        print(f"bulkleads: error: {escape_controls(message)}", file=sys.stderr)


class Reporter:
    """Prints the plan, the progress and the summary in the chosen format; ``summary_path``
    also gets the summary as one JSON object (``--summary``), for monitoring."""

    def __init__(self, fmt: LogFormat, *, quiet: bool, summary_path: Path | None = None) -> None:
        self.fmt = fmt
        self.quiet = quiet
        self.summary_path = summary_path
        self.notify_url: str | None = None  # --notify: the summary is posted there too
        self.token: Token | None = None  # what a notification must never carry
        self._console = Console(stderr=True, highlight=False)
        self.interactive = self._console.is_terminal and fmt == "text" and not quiet

    def info(self, message: str, **data: object) -> None:
        LOGGER.info(message, extra={"data": data})

    def warn(self, message: str, **data: object) -> None:
        LOGGER.warning(message, extra={"data": data})

    def plan(
        self,
        summary: PlanSummary,
        *,
        limit: Limit,
        pace: str,
        examples: list[str],
        per_request: int = 1,
        reads_per_request: int | None = None,
        verify: bool = False,
        noun: str = "lead",
        left: tuple[int, int] | None = None,
        links: tuple[int, int, int] = (0, 0, 0),
    ) -> None:
        """``reads_per_request`` None: reading (backup) is off. ``left`` (resuming a job):
        how many records are still to write and to read; the cost is theirs, not the job's.
        ``links``: the requests of finding, reading links and linking. The time counts every
        request at ``limit``, spent as the pacer spends it: a window's budget at once when the
        window is longer than a second."""
        to_write, to_read = left if left is not None else (summary.bundles, summary.bundles)
        requests = -(-to_write // per_request)
        reads = -(-to_read // reads_per_request) if reads_per_request else 0
        checks = requests if verify else 0
        linking = sum(links)
        total = requests + reads + checks + linking
        eta = limit.minimum_seconds(total) if limit.window > 1 else total / limit.rate
        cost = _cost_words(reads, checks, links)
        still = " left" if left is not None else ""
        self.info(
            f"plan: {summary.records} {plural(summary.records, 'row')} read, "
            f"{summary.invalid} invalid, {summary.bundles} {plural(summary.bundles, noun)} to "
            f"update ({summary.skipped} with nothing to change), {summary.conflicts} "
            f"conflicting {plural(summary.conflicts, 'value')} in {summary.conflicted_guids} "
            f"{plural(summary.conflicted_guids, noun)}; "
            + (
                f"{summary.links} {plural(summary.links, 'link')} to make; "
                if summary.links
                else ""
            )
            + f"{requests} "
            f"{plural(requests, 'request')}{cost}{still}, about {_duration(eta)}{still} at "
            f"{limit}",
            event="plan",
            records=summary.records,
            invalid=summary.invalid,
            bundles=summary.bundles,
            skipped=summary.skipped,
            links=summary.links,
            conflicts=summary.conflicts,
            requests=requests,
            reads=reads,
            verify_reads=checks,
            link_requests=linking,
            estimated_seconds=round(eta, 1),
            limit=limit.requests,
            window_seconds=limit.window,
        )
        self.info(f"  pace: {pace}", event="pace", limit=limit.requests, window=limit.window)
        self._plan_details(summary, examples)

    def _plan_details(self, summary: PlanSummary, examples: list[str]) -> None:
        """The plan's lines after its count: invalid rows, custom fields, encoding, ignored
        columns and the example requests."""
        if summary.records == 0:
            self.warn("no data rows in the input: nothing to send", event="empty_input")
        for row, line, guid, reason in summary.invalid_examples:
            named, colon, _ = reason.partition(": ")
            self.warn(
                f"  invalid: row {row} (line {line}): {reason}",
                event="invalid_row",
                row=row,
                line=line,
                guid=guid,
                field=named if colon and " " not in named else None,  # "closedAt: ..."
                reason=reason,
            )
        if summary.invalid > len(summary.invalid_examples):
            self.warn(
                f"  ... and {summary.invalid - len(summary.invalid_examples)} more invalid "
                "rows: see the report",
                event="invalid_rows_more",
            )
        if summary.custom_fields:
            self.info(
                "  custom fields, sent as given: " + ", ".join(summary.custom_fields),
                event="custom_fields",
                fields=summary.custom_fields,
            )
        if summary.encoding:
            self.info(f"  encoding: {summary.encoding}", event="encoding", name=summary.encoding)
        if summary.ignored_columns:
            self.info(
                "  ignored columns: " + ", ".join(repr(c) for c in summary.ignored_columns),
                event="ignored_columns",
            )
        for text in examples:
            self.info(f"  example request: {text}", event="example_request")

    def progress(self, total: int | None, label: str, unit: str) -> ProgressSink:
        """A progress display: a bar on a terminal, a log line every 10 s otherwise."""
        if self.interactive:
            return _BarSink(self._console, total, label, unit)
        if self.quiet:
            return ProgressSink()
        return _LogSink(self, total, label, unit)

    def summary(
        self,
        counts: Counter[str],
        stats: SendStats | None,
        report: str,
        *,
        exit_code: int,
        job: str | None = None,
        verified: int | None = None,
        page: str | None = None,
        noun: str = "lead",
        links: Counter[str] | None = None,
        this_run: Counter[str] | None = None,
        failed_rows: str | None = None,
    ) -> None:
        """The last word of a command: every count (zeros too), requests by status, retries,
        429s, elapsed time, the job, the report and the exit code."""
        rows = sum(counts.values())
        parts = ", ".join(f"{counts[k]} {k}" for k in OUTCOMES if counts[k])
        data: dict[str, object] = {
            "event": "summary",
            "rows": rows,
            **{k: counts[k] for k in OUTCOMES},
            "requests": 0,
            "statuses": {},
            "retries": 0,
            "rate_limited": 0,
            "error_share": 0.0,
            "elapsed_seconds": 0.0,
            "requests_per_second": 0.0,
            "verified": verified,
            "job": job,
            "report": report,
            "exit_code": exit_code,
        }
        if page is not None:
            data["page"] = page
        data["failed_rows"] = failed_rows
        line = f"done: {rows} {plural(rows, 'row')}: {parts or 'nothing'}"
        if verified is not None:
            line += f"; {verified} {plural(verified, noun)} verified (read back as sent)"
            data["verified"] = verified
        if links:
            line += "; links: " + ", ".join(f"{n} {word}" for word, n in sorted(links.items()))
            data["links"] = dict(links)
        if stats is not None:
            line += _stats_words(stats, data)
        if this_run is not None:
            line += _this_run(this_run, stats, data)
        LOGGER.log(logging.INFO if not self.quiet else logging.WARNING, line, extra={"data": data})
        self.info(f"report: {report}", event="report", path=report)
        if self.summary_path is not None:
            write_summary(self.summary_path, data)
        if self.notify_url is not None and (warning := notify(self.notify_url, data, self.token)):
            self.warn(warning, event="notify_failed")


class ProgressSink:
    """Receives progress; the base class shows nothing (``--quiet``)."""

    def advance(self, state: str) -> None:
        """One bundle settled in ``state``."""

    def set(self, done: int) -> None:
        """``done`` units so far (bytes read, for preflight)."""

    def close(self) -> None:
        """The run is over."""


class _BarSink(ProgressSink):
    def __init__(self, console: Console, total: int | None, label: str, unit: str) -> None:
        count = DownloadColumn() if unit == "bytes" else MofNCompleteColumn()
        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            count,
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=unit == "bytes",
        )
        self._task = self._bar.add_task(label, total=total)
        self._bar.start()

    def advance(self, state: str) -> None:
        self._bar.advance(self._task)

    def set(self, done: int) -> None:
        self._bar.update(self._task, completed=done)

    def close(self) -> None:
        self._bar.stop()


class _LogSink(ProgressSink):
    def __init__(
        self,
        reporter: Reporter,
        total: int | None,
        label: str,
        unit: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reporter = reporter
        self._total = total
        self._label = label
        self._unit = unit
        self._clock = clock
        self._started = self._last = clock()
        self._done = 0

    def advance(self, state: str) -> None:
        self.set(self._done + 1)

    def set(self, done: int) -> None:
        self._done = done
        now = self._clock()
        if now - self._last < _PROGRESS_EVERY:
            return
        self._last = now
        rate = done / (now - self._started)
        total = "?" if self._total is None else str(self._total)
        left = (
            f", about {_duration((self._total - done) / rate)} left"
            if (self._total is not None and rate)
            else ""
        )
        self._reporter.info(
            f"{self._label}: {done}/{total} {self._unit}, {rate:.1f}/s{left}",
            event="progress",
            phase=self._label,
            done=done,
            total=self._total,
            rate=round(rate, 2),
        )


_RUN_WORDS: Final = (
    "updated",
    "created",
    "archived",
    "skipped",
    "failed",
    "not_found",
    "unconfirmed",
    "invalid",
)


def _stats_words(stats: SendStats, data: dict[str, object]) -> str:
    """The requests' part of the done line (statuses, retries, 429s, pace), added to
    ``data`` as the summary's figures."""
    achieved = stats.requests / stats.elapsed if stats.elapsed else 0.0
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(stats.statuses.items()))
    before = f"{stats.before} before sending; " if stats.before else ""
    line = (
        f"; {stats.requests} requests ({before}{statuses or 'no answers'}), "
        f"{stats.retries} retries, {stats.rate_limited} rate-limited (429), "
        f"error responses {stats.error_share:.1%} of requests, "
        f"{_duration(stats.elapsed)} at {achieved:.2f} requests/s"
    )
    if stats.limit is not None:
        line += (
            f"; pace: {stats.utilization:.2f} of {stats.limit}"
            if stats.utilization is not None
            else f"; pace: every request within the first window of {stats.limit}"
        )
        data.update(
            utilization=round(stats.utilization, 3) if stats.utilization is not None else None,
            limit=stats.limit.requests,
            window_seconds=stats.limit.window,
        )
    data.update(
        requests=stats.requests,
        requests_before_sending=stats.before,
        statuses=dict(stats.statuses),
        retries=stats.retries,
        rate_limited=stats.rate_limited,
        error_share=round(stats.error_share, 4),
        elapsed_seconds=round(stats.elapsed, 2),
        requests_per_second=round(achieved, 3),
    )
    return line


def _this_run(settled: Counter[str], stats: SendStats | None, data: dict[str, object]) -> str:
    """What this run did, apart from the job's totals (the counts before it are a resumed or
    nightly job's, not tonight's): its records settled and its requests, and whether it had
    anything to do; added to ``data`` as ``this_run``."""
    requests = stats.requests if stats is not None else 0
    done = [(word, settled[word]) for word in _RUN_WORDS if settled[word] > 0]
    nothing = requests == 0 and not done
    data["this_run"] = {
        "requests": requests,
        **{word: settled[word] for word in _RUN_WORDS},
        "nothing_to_do": nothing,
    }
    words = ", ".join(f"{n} {word.replace('_', ' ')}" for word, n in done)
    if nothing:
        return "; this run: nothing to do (the counts are the job's)"
    return f"; this run: {words or 'no record settled'}, {requests} requests"


def _cost_words(reads: int, checks: int, links: tuple[int, int, int]) -> str:
    """The plan's requests besides the writes, in words."""
    cost = (
        f" plus {reads} {plural(reads, 'read')} to back up current values and skip what "
        "is already so (--no-backup skips them)"
        if reads
        else ""
    )
    if checks:
        cost += f" plus {checks} {plural(checks, 'read')} to verify (--verify)"
    if any(links):
        finding, reading, making = links
        cost += (
            f" plus {sum(links)} for links ({finding} finding, {reading} reading links, "
            f"{making} linking)"
        )
    return cost


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"
