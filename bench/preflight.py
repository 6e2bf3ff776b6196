"""Preflight benchmark: `bulkleads update FILE --dry-run` against a bare csv.reader loop.

Generates the files deterministically (ROWS rows over ROWS/5 distinct guids), runs the commands
alternately (three runs each), and prints the medians, their ratio and each one's peak RSS; and
the same for a floor: the reader's rows inserted into SQLite and nothing more.
Usage: `make bench-preflight` or `python bench/preflight.py [ROWS ...]` (default 1000000).

`python bench/preflight.py --xlsx [ROWS ...]` does the same for an `.xlsx` workbook of the same
rows, against openpyxl's own read-only loop over it (one run each: workbooks are slow to read).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = str(Path(sys.executable).parent / "bulkleads")
BASELINE = (
    "import csv,sys\nwith open(sys.argv[1], newline='') as f:\n    for row in csv.reader(f): pass\n"
)
# The least any design that keeps rows in a SQLite job store can cost: the same reader's rows
# inserted from C (executemany) into a table on disk, with our journal settings, and nothing
# else (no validation, no bundles, no report). It frames how far 3x the bare loop is.
FLOOR = (
    "import csv,sqlite3,sys\n"
    "db = sqlite3.connect(sys.argv[2], isolation_level=None)\n"
    "db.execute('PRAGMA journal_mode=WAL'); db.execute('PRAGMA synchronous=NORMAL')\n"
    "db.execute('CREATE TABLE raw (guid, city, closedAt, isCustomer)')\n"
    "with open(sys.argv[1], newline='') as f:\n"
    "    rows = csv.reader(f); next(rows); db.execute('BEGIN')\n"
    "    db.executemany('INSERT INTO raw VALUES (?,?,?,?)', rows); db.execute('COMMIT')\n"
)
MEASURE = (
    "import resource, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
    "elapsed = time.perf_counter() - t\n"
    "print(elapsed, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


OPENPYXL_LOOP = (
    "import sys\nfrom openpyxl import load_workbook\n"
    "book = load_workbook(sys.argv[1], read_only=True, data_only=True)\n"
    "for row in book.worksheets[0].iter_rows(values_only=True): pass\n"
)


def generate_xlsx(path: Path, rows: int) -> None:
    """The rows of :func:`generate` as a workbook, dates as Excel dates."""
    from datetime import datetime

    from openpyxl import Workbook

    guids = max(1, rows // 5)
    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(["guid", "city", "closedAt", "isCustomer"])
    for i in range(rows):
        g = (i * 7919) % guids
        day = datetime(2024, 3, 1 + i % 28)
        sheet.append([f"{g:032x}", f"City{i % 977}", day, "yes" if i % 2 else "no"])
    book.save(path)


def bench_xlsx(rows: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = folder / "leads.xlsx"
        started = time.perf_counter()
        generate_xlsx(data, rows)
        print(f"generated {rows} rows in {time.perf_counter() - started:.1f}s", file=sys.stderr)
        ours = [BIN, "update", str(data), "--dry-run", "--quiet"]
        ours += ["--state-dir", str(folder / "state"), "--report", str(folder / "report.csv")]
        ours_s, ours_rss = measure(ours)
        base_s, base_rss = measure([sys.executable, "-c", OPENPYXL_LOOP, str(data)])
    return {
        "rows": rows,
        "format": "xlsx",
        "bulkleads_s": round(ours_s, 2),
        "openpyxl_loop_s": round(base_s, 2),
        "ratio": round(ours_s / base_s, 2),
        "bulkleads_peak_rss_mb": round(ours_rss / 1024, 1),
        "openpyxl_loop_peak_rss_mb": round(base_rss / 1024, 1),
    }


def generate(path: Path, rows: int) -> None:
    guids = max(1, rows // 5)
    with path.open("w", newline="") as f:
        f.write("guid,city,closedAt,isCustomer\n")
        for i in range(rows):
            g = (i * 7919) % guids
            f.write(f"{g:032x},City{i % 977},2024-03-{1 + i % 28:02d},{'yes' if i % 2 else 'no'}\n")


def measure(command: list[str]) -> tuple[float, int]:
    """Seconds and peak RSS in KiB of one fresh run of ``command``."""
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, *command], capture_output=True, text=True, check=True
    ).stdout.split()
    return float(out[0]), int(out[1])


def bench(rows: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = folder / "leads.csv"
        started = time.perf_counter()
        generate(data, rows)
        print(f"generated {rows} rows in {time.perf_counter() - started:.1f}s", file=sys.stderr)
        ours = [
            BIN,
            "update",
            str(data),
            "--dry-run",
            "--quiet",
            "--state-dir",
            str(folder / "state"),
            "--report",
            str(folder / "report.csv"),
        ]
        base = [sys.executable, "-c", BASELINE, str(data)]
        commands = {"bulkleads": ours, "csv.reader": base}
        times: dict[str, list[float]] = {"bulkleads": [], "csv.reader": [], "floor": []}
        rss: dict[str, int] = dict.fromkeys(times, 0)
        for run in range(3):
            floor_db = folder / f"floor{run}.sqlite"
            commands["floor"] = [sys.executable, "-c", FLOOR, str(data), str(floor_db)]
            for name, command in commands.items():
                seconds, peak = measure(command)
                times[name].append(seconds)
                rss[name] = max(rss[name], peak)
    ours_s = statistics.median(times["bulkleads"])
    base_s = statistics.median(times["csv.reader"])
    floor_s = statistics.median(times["floor"])
    return {
        "rows": rows,
        "bulkleads_s": round(ours_s, 2),
        "csv_reader_s": round(base_s, 2),
        "ratio": round(ours_s / base_s, 2),
        "floor_s": round(floor_s, 2),
        "floor_ratio": round(floor_s / base_s, 2),
        "bulkleads_peak_rss_mb": round(rss["bulkleads"] / 1024, 1),
        "csv_reader_peak_rss_mb": round(rss["csv.reader"] / 1024, 1),
    }


def main() -> None:
    args = sys.argv[1:]
    xlsx = "--xlsx" in args
    sizes = [int(a) for a in args if a != "--xlsx"] or [1_000_000]
    for size in sizes:
        print(json.dumps(bench_xlsx(size) if xlsx else bench(size)))


if __name__ == "__main__":
    main()
