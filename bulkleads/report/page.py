"""A job on one self-contained HTML page: its pace against the portal's limit, run by run, and
what came of every row.

For each run that sent: our requests in the rolling window at each request's start, drawn against
the portal's limit and against what the pacer left to other clients, coloured by phase, with
429s and retries marked. Then counts by outcome, per-field change counts and the failures with
their reasons. Inline SVG and a few lines of script (hover to read a point): the page fetches
nothing, so it opens from a mail attachment or an air-gapped laptop. Every text from the job
(reasons, field names) is escaped. No token, no URL and no value ever reach it.
"""

from __future__ import annotations

import html
import json
import os
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from string import Template
from typing import Final

from bulkleads.errors import UsageError
from bulkleads.jobstore.meta import JobMeta
from bulkleads.jobstore.requests import TimelineEntry
from bulkleads.jobstore.store import JobStore
from bulkleads.report.paths import check_regular
from bulkleads.report.rows import (
    LINK_PROBLEMS,
    RowOutcome,
    count_links,
    count_outcomes,
    link_word,
    outcome_of,
)

_WIDTH: Final = 900
_HEIGHT: Final = 260
_PAD: Final = 40
_POINTS: Final = 1500  # points drawn per run at most; a busier run is drawn by its peaks
_FAILURES_SHOWN: Final = 200
# Each phase its own colour: the records' phases in cool tones, the links' in warm ones.
_PHASE_COLOURS: Final = {
    "reading": "#4c78a8",
    "updating": "#54a24b",
    "creating": "#88d27a",
    "archiving": "#9d755d",
    "confirming": "#72b7b2",
    "verifying": "#b279a2",
    "finding": "#e45756",
    "reading links": "#f58518",
    "linking": "#eeca3b",
    "unlinking": "#ff9da6",
}


def write_html(store: JobStore, path: Path) -> int:
    """Write the page; returns how many requests it draws (every one the job made)."""
    meta = JobMeta.read(store)
    runs: dict[int, list[TimelineEntry]] = defaultdict(list)
    for entry in store.requests.entries():
        runs[entry[0]].append(entry)
    limits = {int(str(r["run"])): dict(r) for r in meta.runs}
    total = sum(len(entries) for entries in runs.values())
    sections = [_chart(run, entries, limits.get(run, {})) for run, entries in sorted(runs.items())]
    page = _PAGE.substitute(
        title=html.escape(f"bulkleads job {meta.job}"),
        input=html.escape(meta.input),
        created=html.escape(meta.created or ""),
        total=total,
        charts="\n".join(sections) or "<p>This job has sent no request yet.</p>",
        outcomes=_table(("outcome", "rows"), sorted(count_outcomes(store).items())),
        links=_table(("outcome", "links"), sorted(count_links(store).items()))
        if store.links.any()
        else "<p>This job makes no links.</p>",
        fields=_table(("field", "records changed"), sorted(_field_counts(store).items())),
        failures=_failures(store),
        data=json.dumps({"requests": total}),
    )
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)
    return total


def check_page_path(path: Path, ours: list[Path]) -> None:
    """The page never replaces the input, the job file, the report, or an existing file that
    is not a page of ours."""
    check_regular(path, "--html")
    if not path.exists():
        return
    for other in ours:
        if other.exists() and os.path.samefile(path, other):
            raise UsageError(
                f"--html {path} is the job's input, job file or report: give another path"
            )
    with open(path, "rb") as f:
        start = f.read(512)
    if _MARK.encode() not in start:
        raise UsageError(
            f"--html {path} exists and is not a bulkleads page: give another path or remove it"
        )


def _chart(run: int, entries: list[TimelineEntry], info: dict[str, object]) -> str:
    """One run: requests in the rolling window over time against the limit."""
    limit = float(info.get("limit") or 0) or None  # type: ignore[arg-type]
    window = float(info.get("window") or 10.0)  # type: ignore[arg-type]
    start = entries[0][1]
    span = max(max(e[2] for e in entries) - start, window / 10)
    accepted = [e[1] for e in entries if e[3] != 429]
    points = []
    for entry in entries:
        t = entry[1]
        in_window = bisect_right(accepted, t) - bisect_right(accepted, t - window)
        points.append((t - start, in_window, entry[4], max(0.0, (limit or 0) - entry[6])))
    peak = max([p[1] for p in points] + [limit or 0, 1])

    def x(seconds: float) -> float:
        return _PAD + seconds / span * (_WIDTH - 2 * _PAD)

    def y(count: float) -> float:
        return _HEIGHT - _PAD - count / peak * (_HEIGHT - 2 * _PAD)

    shown = _thin(points)
    parts = [
        f'<line class="axis" x1="{_PAD}" y1="{y(0):.1f}" x2="{_WIDTH - _PAD}" y2="{y(0):.1f}"/>',
        f'<text x="{_PAD}" y="{_HEIGHT - 8}">0 s</text>',
        f'<text x="{_WIDTH - _PAD}" y="{_HEIGHT - 8}" text-anchor="end">{span:.0f} s</text>',
    ]
    if limit:
        parts.append(
            f'<line class="limit" x1="{_PAD}" y1="{y(limit):.1f}" x2="{_WIDTH - _PAD}" '
            f'y2="{y(limit):.1f}"><title>the limit: {limit:g} per {window:g} s</title></line>'
        )
        parts.append(
            f'<text x="{_WIDTH - _PAD}" y="{y(limit) - 4:.1f}" text-anchor="end">'
            f"limit: {limit:g} per {window:g} s</text>"
        )
        left = " ".join(f"{x(t):.1f},{y(room):.1f}" for t, _, _, room in shown)
        parts.append(f'<polyline class="others" points="{left}"/>')
    for phase in dict.fromkeys(p[2] for p in shown):
        colour = _PHASE_COLOURS.get(phase, "#888")
        for t, count, _, _ in (p for p in shown if p[2] == phase):
            parts.append(
                f'<circle cx="{x(t):.1f}" cy="{y(count):.1f}" r="1.6" fill="{colour}" '
                f'data-t="{t:.2f}" data-n="{count}" data-phase="{html.escape(phase)}"/>'
            )
    for entry in entries:
        kind = "refused" if entry[3] == 429 else "retry" if entry[5] > 1 else None
        if kind:
            parts.append(
                f'<line class="{kind}" x1="{x(entry[1] - start):.1f}" y1="{_PAD - 10}" '
                f'x2="{x(entry[1] - start):.1f}" y2="{_PAD - 2}"/>'
            )
    statuses = Counter("no answer" if e[3] is None else str(e[3]) for e in entries)
    pace = info.get("utilization")
    caption = (
        f"run {run}: {len(entries)} requests"
        + (f", limit {limit:g} per {window:g} s" if limit else "")
        + (f", pace {float(pace):.2f} of the limit" if isinstance(pace, int | float) else "")
        + ", "
        + ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items()))
    )
    legend = " ".join(
        f'<span style="color:{_PHASE_COLOURS.get(phase, "#888")}">&#9679; {html.escape(phase)}'
        "</span>"
        for phase in dict.fromkeys(e[4] for e in entries)
    )
    return (
        f'<section class="run"><h3>{html.escape(caption)}</h3>'
        f'<p class="legend">{legend} <span class="lim">&#8212; limit</span> '
        '<span class="oth">&#8212; left to us beside other clients</span> '
        '<span class="ref">| 429</span> <span class="ret">| retry</span></p>'
        f'<svg class="chart" data-requests="{len(entries)}" viewBox="0 0 {_WIDTH} {_HEIGHT}" '
        f'role="img" aria-label="{html.escape(caption)}">{"".join(parts)}</svg></section>'
    )


def _thin(points: list[tuple[float, int, str, float]]) -> list[tuple[float, int, str, float]]:
    """At most :data:`_POINTS` points: of each stretch, the one with the most in the window."""
    if len(points) <= _POINTS:
        return points
    step = len(points) / _POINTS
    return [
        max(points[int(i * step) : int((i + 1) * step)], key=lambda p: p[1]) for i in range(_POINTS)
    ]


def _field_counts(store: JobStore) -> Counter[str]:
    counts: Counter[str] = Counter()
    for _, body, _ in store.updated():
        counts.update(body.keys())
    return counts


def _failures(store: JobStore) -> str:
    """Every row that failed, and every link that was not made, with its reason."""
    rows: list[tuple[object, ...]] = []
    more = 0
    links = store.links.by_record() if store.links.any() else {}
    for row in store.report_rows():
        outcome, error, _ = outcome_of(row)
        lost = [
            (f"link to {obj} {value}", f"{word}" + (f": {reason}" if reason else ""))
            for obj, value, _, state, reason, action in links.get(row.guid or "", [])
            if (word := link_word(state, action)) in LINK_PROBLEMS
        ]
        if outcome in (RowOutcome.FAILED, RowOutcome.INVALID, RowOutcome.NOT_SENT):
            lost.insert(0, (str(outcome), error or ""))
        for what, why in lost:
            if len(rows) < _FAILURES_SHOWN:
                rows.append((row.row, row.line, row.guid or "", what, row.status or "", why))
            else:
                more += 1
    if not rows:
        return "<p>No row failed and no link was lost.</p>"
    table = _table(("row", "line", "record", "outcome", "status", "reason"), rows)
    return table + (f"<p>... and {more} more: see the report.</p>" if more else "")


def _table(header: tuple[str, ...], rows: Sequence[tuple[object, ...]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_MARK: Final = "<!-- bulkleads job page -->"
_PAGE: Final = Template("""<!doctype html>
<!-- bulkleads job page -->
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
  content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>${title}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; max-width: 980px; }
svg.chart { width: 100%; height: auto; background: #fafafa; border: 1px solid #ddd; }
svg text { font-size: 11px; fill: #555; }
.axis { stroke: #999; } .limit { stroke: #d62728; stroke-dasharray: 6 3; stroke-width: 1.5; }
.others { fill: none; stroke: #ff7f0e; stroke-width: 1; }
.refused { stroke: #d62728; stroke-width: 2; } .retry { stroke: #ff7f0e; stroke-width: 2; }
.legend span { margin-right: 1em; }
.lim, .ref { color: #d62728; } .oth, .ret { color: #ff7f0e; }
table { border-collapse: collapse; margin: .5em 0 1.5em; }
td, th { border: 1px solid #ddd; padding: 2px 8px; text-align: left; }
#tip { position: fixed; background: #222; color: #fff; padding: 2px 6px; font-size: 12px;
  border-radius: 3px; pointer-events: none; display: none; }
</style></head>
<body>
<h1>${title}</h1>
<p>input: ${input} &middot; planned: ${created} &middot;
<span id="total">${total}</span> requests drawn</p>
<h2>Pace</h2>
<p>Each dot is one request: how many of the job's accepted requests were in the portal's rolling
window when it left. The dashed line is the limit; the thin line is what the pacer left to us
beside the share it saw other clients use.</p>
${charts}
<h2>Rows by outcome</h2>
${outcomes}
<h2>Links by outcome</h2>
${links}
<h2>Changes by field</h2>
${fields}
<h2>Failures</h2>
${failures}
<div id="tip"></div>
<script type="application/json" id="data">${data}</script>
<script>
(function () {
  var expected = JSON.parse(document.getElementById("data").textContent).requests;
  var drawn = 0;
  document.querySelectorAll("svg.chart").forEach(function (svg) {
    drawn += Number(svg.dataset.requests);
  });
  document.body.dataset.requests = String(drawn);
  document.body.dataset.consistent = String(drawn === expected);
  var tip = document.getElementById("tip");
  document.querySelectorAll("circle[data-t]").forEach(function (dot) {
    dot.addEventListener("mouseenter", function (event) {
      tip.textContent = dot.dataset.phase + " at " + dot.dataset.t + " s: " +
        dot.dataset.n + " in the window";
      tip.style.left = (event.clientX + 12) + "px";
      tip.style.top = (event.clientY + 12) + "px";
      tip.style.display = "block";
    });
    dot.addEventListener("mouseleave", function () { tip.style.display = "none"; });
  });
  document.body.dataset.ready = "yes";
})();
</script>
</body></html>
""")
