"""The installed CLI run in processes forked from one that has already imported it.

Each start of ``bulkleads`` spends about 0.34 s of CPU importing typer, rich, httpx and
bulkleads before it does anything (``bench/startup.py``); the suite starts some 400 of them,
which on 2 cores was most of its time. So each test worker keeps one fork server: a process
that imports what the ``bulkleads`` script imports (and the sandbox's server) once, then
forks a child per run. A child is a process of its own, with its own pid, file descriptors 0-2,
working directory, environment, ``argv``, signals and exit code, and it runs
``sys.exit(bulkleads.commands.app.main())`` as the installed script does.

What a fork does not redo is the interpreter's own start, which reads the ``PYTHON*``, ``LANG``
and ``LC_*`` variables: a run whose environment differs from the server's in one of those is
started from the script instead (:func:`forkable`), as are the tests of signals, kills, stdin
and ``python -m`` (they start their own processes).

Run as a script, this file is the server: ``python forked.py FD`` serves the control socket
``FD`` (``AF_UNIX``, ``SOCK_SEQPACKET``: one message a request or an answer) until it closes.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import select
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

# What the installed script imports, what `bulkleads sandbox` imports to serve, and what a run
# imports on its way to the network (httpx's transport, its CA bundle, anyio's event loop).
PRELOADED = (
    "bulkleads.commands.app",
    "bulkleads.sandbox.server",
    "httpcore",
    "certifi",
    "anyio._backends._asyncio",
)
# Variables read while the interpreter starts (encodings, locale, paths, flags).
STARTUP_PREFIXES = ("PYTHON", "LC_", "LANG")


def forkable(env: dict[str, str], server_env: dict[str, str]) -> bool:
    """Whether a child forked from a server started under ``server_env`` starts as a fresh
    interpreter would under ``env``."""
    names = {n for n in (*env, *server_env) if n.startswith(STARTUP_PREFIXES)}
    return all(env.get(n) == server_env.get(n) for n in names)


class ForkedProcess:
    """The parts of :class:`subprocess.Popen` the tests use, for a child of the server."""

    def __init__(self, server: ForkServer, pid: int) -> None:
        self._server = server
        self.pid = pid
        self.stdout: IO[str] | None = None  # set by whoever holds the other end of its pipe
        self.returncode: int | None = None
        self.peak_kb = 0  # the child's peak resident memory once it has ended (ru_maxrss)

    def poll(self) -> int | None:
        if self.returncode is None:
            self._ended(self._server.ended(self.pid, timeout=0))
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self._ended(self._server.ended(self.pid, timeout=timeout))
            if self.returncode is None:
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0)
        return self.returncode

    def _ended(self, ended: tuple[int, int] | None) -> None:
        if ended is not None:
            self.returncode, self.peak_kb = ended

    def finish(self, timeout: float) -> int:
        """Wait for the end; past ``timeout`` seconds, kill the child and raise
        :class:`subprocess.TimeoutExpired` (as :func:`subprocess.run` does)."""
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self.wait()
            raise

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkServer:
    """One server process; :meth:`spawn` forks a CLI run from it."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.env = dict(os.environ)
        self._proc = subprocess.Popen(
            [sys.executable, __file__, str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        theirs.close()
        self.pid = self._proc.pid
        self._control = ours
        self._ended: dict[int, tuple[int, int]] = {}
        self._receive()  # the server says it is ready once it has imported everything

    def spawn(
        self,
        argv: list[str],
        *,
        env: dict[str, str],
        cwd: Path | str,
        stdout: int,
        stderr: int,
    ) -> ForkedProcess:
        """Fork a run of ``argv`` with /dev/null, ``stdout`` and ``stderr`` (descriptors) as
        its 0, 1 and 2."""
        null = os.open(os.devnull, os.O_RDONLY)
        request = {"argv": argv, "env": env, "cwd": str(cwd)}
        try:
            socket.send_fds(self._control, [json.dumps(request).encode()], [null, stdout, stderr])
        finally:
            os.close(null)
        while True:
            message = self._receive()
            if "started" in message:
                return ForkedProcess(self, int(message["started"]))

    def ended(self, pid: int, timeout: float | None) -> tuple[int, int] | None:
        """Child ``pid``'s exit code (negative: the signal that ended it) and peak resident
        memory in KiB, or None if it is still running after ``timeout`` seconds. The peak is
        the child's own: one started from the script by this worker would count the worker's
        resident memory too (Linux keeps the larger of the two across the exec)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while pid not in self._ended:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([self._control], [], [], left)[0]:
                return None
            self._receive()
        return self._ended.pop(pid)

    def _receive(self) -> dict[str, Any]:
        data = self._control.recv(1 << 16)
        if not data:
            raise RuntimeError(f"the CLI fork server ended (exit {self._proc.wait()})")
        message: dict[str, Any] = json.loads(data)
        if "ended" in message:
            self._ended[int(message["ended"])] = (int(message["code"]), int(message["peak_kb"]))
        return message

    def close(self) -> None:
        self._control.close()
        self._proc.wait(timeout=30)


class _Forked(Exception):
    """Raised in a new child to leave the server's loop before it runs the CLI."""

    def __init__(self, request: dict[str, Any], fds: list[int]) -> None:
        super().__init__()
        self.request = request
        self.fds = fds

    def become(self) -> None:
        """Take the run's file descriptors, folder, environment and arguments."""
        for target, fd in enumerate(self.fds):
            os.dup2(fd, target)
        for fd in set(self.fds):
            if fd > 2:
                os.close(fd)
        os.chdir(self.request["cwd"])
        os.environ.clear()
        os.environ.update(self.request["env"])
        time.tzset()
        sys.argv = list(self.request["argv"])


def _serve(control: socket.socket) -> None:
    """Fork a child for each request; report each child's exit; return when the socket closes."""
    for name in PRELOADED:
        importlib.import_module(name)

    # Nothing the server made is garbage; frozen, the children's collections and their exit
    # leave those objects (and so the pages they share with the server) alone: half the CPU.
    gc.freeze()
    children: dict[int, int] = {}  # pidfd -> pid
    selector = selectors.DefaultSelector()
    selector.register(control, selectors.EVENT_READ)
    control.send(b'{"ready": true}')
    while True:
        for key, _ in selector.select():
            if key.fileobj is control:
                data, fds, _, _ = socket.recv_fds(control, 1 << 20, 3)
                if not data:
                    return
                pid = os.fork()
                if pid == 0:
                    selector.close()
                    control.close()
                    for pidfd in children:
                        os.close(pidfd)
                    raise _Forked(json.loads(data), fds)
                for fd in fds:
                    os.close(fd)
                pidfd = os.pidfd_open(pid)
                children[pidfd] = pid
                selector.register(pidfd, selectors.EVENT_READ)
                control.send(json.dumps({"started": pid}).encode())
            else:
                pidfd = key.fd
                pid = children.pop(pidfd)
                selector.unregister(pidfd)
                os.close(pidfd)
                _, status, usage = os.wait4(pid, 0)
                code = os.waitstatus_to_exitcode(status)
                ended = {"ended": pid, "code": code, "peak_kb": usage.ru_maxrss}
                control.send(json.dumps(ended).encode())


if __name__ == "__main__":
    # The installed script's own folder first on the path, as for the script (not tests/).
    sys.path[0] = str(Path(sys.executable).parent)
    forked: _Forked | None = None
    try:
        _serve(socket.socket(fileno=int(sys.argv[1])))
    except _Forked as child:
        forked = child.with_traceback(None)
    if forked is not None:  # the child, out of the server's frames and its except block
        forked.become()
        del forked
        from bulkleads.commands.app import main

        sys.exit(main())
