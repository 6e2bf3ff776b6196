"""Startup benchmark: the CPU one `bulkleads` process spends before it does any work.

Cron pays it once a night; the test suite pays it on every CLI run and every sandbox it starts
(about 400 processes), where it was most of the suite's CPU. Each command runs RUNS times,
alternating with a bare interpreter (`python -c pass`) so that both see the same machine;
the medians of the children's user + system CPU are printed, and each command's ratio to the
bare interpreter. The sandbox is measured until it prints its URL (it is ready), then stopped.
Usage: `make bench-startup` or `python bench/startup.py [RUNS]` (default 15).
"""

from __future__ import annotations

import importlib.metadata
import os
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BIN = str(Path(sys.executable).parent / "bulkleads")
TICK = os.sysconf("SC_CLK_TCK")


def cpu_of_run(command: list[str], env: dict[str, str]) -> float:
    """User + system CPU seconds of one process that runs to its end."""
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _, usage = os.wait4(proc.pid, 0)
    return usage.ru_utime + usage.ru_stime


def cpu_until_ready(command: list[str], env: dict[str, str]) -> float:
    """User + system CPU seconds of a server until it prints its first line (its URL)."""
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    spent = (int(fields[11]) + int(fields[12])) / TICK  # utime, stime
    proc.send_signal(signal.SIGTERM)
    proc.wait()
    return spent


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        leads = folder / "leads.csv"
        leads.write_text("guid,firstname\n0123456789abcdef0123456789abcdef,Ada\n")
        env = {
            "PATH": os.environ["PATH"],
            "HOME": tmp,
            "BULKLEADS_STATE_DIR": str(folder / "state"),
            "HUBSPOT_ACCESS_TOKEN": "bench-token",
        }
        bare = [sys.executable, "-c", "pass"]
        commands = {
            "bulkleads --version": ([BIN, "--version"], cpu_of_run),
            "bulkleads jobs (none)": ([BIN, "jobs"], cpu_of_run),
            "bulkleads update (exit 2)": ([BIN, "update", str(leads), "--dry-run"], cpu_of_run),
            "bulkleads sandbox (ready)": ([BIN, "sandbox", "--port", "0"], cpu_until_ready),
        }
        times: dict[str, list[float]] = {name: [] for name in ["python -c pass", *commands]}
        for _ in range(runs):
            for name, (command, measure) in commands.items():
                times["python -c pass"].append(cpu_of_run(bare, env))
                times[name].append(measure(command, env))
    base = statistics.median(times["python -c pass"])
    typer = importlib.metadata.version("typer")
    print(f"CPU per process, median of {runs} (typer {typer}, Python {sys.version.split()[0]}):")
    print(f"{'command':<28} {'CPU s':>7} {'x bare':>7}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<28} {median:7.3f} {median / base:7.1f}")


if __name__ == "__main__":
    main()
