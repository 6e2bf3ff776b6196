"""Shared test helpers: a virtual-time event loop, and the real sandbox as a subprocess."""

from __future__ import annotations

import asyncio
import atexit
import csv
import inspect
import io
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.forked import ForkedProcess, ForkServer, forkable

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data"
BULKLEADS = str(Path(sys.executable).parent / "bulkleads")
TOKEN = "sandbox-token"
T = TypeVar("T")


class _JumpingSelector(selectors.DefaultSelector):
    """Never blocks: when the loop would wait for a timer, the clock jumps to it instead."""

    loop: VirtualClockLoop

    def select(self, timeout: float | None = None) -> list[Any]:
        ready = super().select(0)
        if not ready and timeout is None:
            raise RuntimeError("deadlock: nothing scheduled and nothing to read")
        # Like a real clock, time moves a little on every turn of the loop, even a busy one.
        self.loop.now += max(timeout or 0.0, 1e-6)
        return ready


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An event loop on a virtual clock: ``asyncio.sleep(60)`` returns at once, at t+60."""

    def __init__(self) -> None:
        selector = _JumpingSelector()
        super().__init__(selector)
        selector.loop = self
        self.now = 0.0

    def time(self) -> float:
        return self.now


def said_until(proc: subprocess.Popen[str], words: str) -> str:
    """What the run prints on stderr up to its first line with ``words`` (it blocks until the
    run says something: an event, not a delay)."""
    assert proc.stderr is not None
    said = []
    for line in proc.stderr:
        said.append(line)
        if words in line:
            break
    return "".join(said)


def interrupt_twice(proc: subprocess.Popen[str], times: int = 2) -> str:
    """Ctrl-C, then Ctrl-C again once the run has said it took the previous one (signals
    sent back to back may merge into one); ``times`` in all. Returns what the run printed
    until the last."""
    said = []
    taken = ("finishing requests in flight", "abandoning the requests in flight")
    for n in range(times - 1):
        proc.send_signal(signal.SIGINT)
        said.append(said_until(proc, taken[n]))
    proc.send_signal(signal.SIGINT)
    return "".join(said)


def json_lines(text: str) -> list[dict]:
    """Every line parsed as a JSON object; fails on the first line that is not one."""
    events = [json.loads(line) for line in text.splitlines()]
    assert all(isinstance(e, dict) for e in events)
    return events


def run_virtual(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on a fresh virtual-clock loop (no real sleeping anywhere)."""
    loop = VirtualClockLoop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test keeps its jobs in its own folder, never in the user's state directory."""
    folder = tmp_path / "state"
    monkeypatch.setenv("BULKLEADS_STATE_DIR", str(folder))
    return folder


def bare_env(**extra: str) -> dict[str, str]:
    """A minimal environment for a CLI subprocess: the token, PATH and the test's job folder."""
    return {
        "HUBSPOT_ACCESS_TOKEN": TOKEN,
        "PATH": "/usr/bin:/bin",
        "BULKLEADS_STATE_DIR": os.environ["BULKLEADS_STATE_DIR"],
        **extra,
    }


def wait_until(condition: Callable[[], object], proc: Any, what: str) -> None:
    """Poll ``condition`` (an event: a sandbox's count, a file of the run's) until it holds;
    fails if ``proc`` ends first, or after two minutes."""
    deadline = time.monotonic() + 120
    while not condition():
        assert proc.poll() is None, f"the run ended before {what}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"not {what} in two minutes"
        time.sleep(0.005)  # a poll interval, not a wait for something to happen


@cache
def fork_server() -> ForkServer:
    """This worker's CLI fork server (see ``forked.py``), started on first use."""
    server = ForkServer()
    atexit.register(server.close)
    return server


@dataclass
class Sandbox:
    """A running ``bulkleads sandbox`` process."""

    url: str
    proc: ForkedProcess

    def stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/__sandbox/stats").json()

    def state(self) -> dict[str, dict[str, Any]]:
        return httpx.get(f"{self.url}/__sandbox/state").json()

    def state_of(self, crm_object: str) -> dict[str, dict[str, str]]:
        """The sandbox's records of a CRM object, by id."""
        return httpx.get(f"{self.url}/__sandbox/objects/{crm_object}").json()

    def configure(self, **changes: object) -> None:
        httpx.post(f"{self.url}/__sandbox/config", json=changes).raise_for_status()

    def wait_for(
        self, count: int, proc: subprocess.Popen[str], what: str = "applied_total"
    ) -> None:
        """Until the sandbox has served ``count`` of ``what`` (writes applied, or ``reads``):
        an event, not a guess at how long a busy machine takes to start a process. Fails if
        ``proc`` ends first, or after two minutes."""
        wait_until(lambda: self.stats()[what] >= count, proc, f"{count} {what}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=15)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def sandbox() -> Iterator[Any]:
    """Start sandboxes with ``sandbox(*flags, seed=path)``; all are stopped after the test."""
    started: list[Sandbox] = []

    def start(*flags: str, seed: Path | None = SAMPLE / "seed.json") -> Sandbox:
        command = [BULKLEADS, "sandbox", "--port", "0", *flags]
        if seed is not None:
            command += ["--seed", str(seed)]
        server = fork_server()
        assert forkable(dict(os.environ), server.env)
        url_read, url_write = os.pipe()
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            proc = server.spawn(
                command, env=dict(os.environ), cwd=os.getcwd(), stdout=url_write, stderr=null
            )
        finally:
            os.close(url_write)
            os.close(null)
        proc.stdout = open(url_read, encoding="utf-8")  # noqa: SIM115  closed by stop()
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        box = Sandbox(url, proc)
        started.append(box)
        return box

    yield start
    for box in started:
        box.stop()


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def run_cli(
    *args: str,
    cwd: Path,
    token: str | None = TOKEN,
    timeout: float = 120,
    env: dict[str, str] | None = None,
    fork: bool = True,
) -> Result:
    """Run the installed ``bulkleads`` command as a user would: forked from this worker's
    fork server (``forked.py``) when its environment allows, else (or with ``fork=False``)
    started from the script."""
    environ = {k: v for k, v in os.environ.items() if k != "HUBSPOT_ACCESS_TOKEN"}
    if token is not None:
        environ["HUBSPOT_ACCESS_TOKEN"] = token
    environ.update(env or {})
    server = fork_server()
    if fork and forkable(environ, server.env):
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            streams = {"stdout": out.fileno(), "stderr": err.fileno()}
            proc = server.spawn([BULKLEADS, *args], env=environ, cwd=cwd, **streams)
            code = proc.finish(timeout)
            texts = []
            for captured in (out, err):
                captured.seek(0)
                text = io.TextIOWrapper(captured)  # decodes as subprocess's text=True does
                texts.append(text.read())
                text.detach()
            return Result(code, *texts)
    done = subprocess.run(
        [BULKLEADS, *args],
        cwd=cwd,
        env=environ,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def read_report(path: Path) -> list[dict[str, str]]:
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines()]
    with path.open(newline="", encoding="utf-8-sig") as f:
        return list(csv.DictReader(f))


def write_seed(path: Path, guids: list[str], **fields: object) -> Path:
    path.write_text(
        json.dumps(
            [{"guid": g, "city": "", "closedAt": 0, "isCustomer": False, **fields} for g in guids]
        )
    )
    return path


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests that run the CLI or a sandbox in processes of their own ``e2e``:
    ``make mutation`` leaves them out, since their processes run the installed code, not the
    mutant under test."""
    for item in items:
        function = getattr(item, "function", None)
        uses = set(getattr(item, "fixturenames", ()))
        try:
            source = inspect.getsource(function) if function is not None else ""
        except (OSError, TypeError):
            source = ""
        if (
            uses & {"sandbox", "crm_box", "monitor", "hostile"}
            or "run_cli(" in source
            or ("Popen(" in source or "run_measured(" in source or "subprocess.run(" in source)
        ):
            item.add_marker(pytest.mark.e2e)
