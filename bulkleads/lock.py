"""One process per job: an OS lock that dies with the process that holds it.

Two runs of one job at once send every lead twice and write two stories into one job file, so a
process must hold the job's lock for as long as it plans into, sends from or reports on the job.
The lock is ``flock`` on ``<job id>.lock`` beside the job file: the kernel drops it when the
holder exits, however it exits (``kill -9`` included), so a lock is never stale and nothing has
to clean it up. The holder writes its PID into the file so that the refusal can name it; the
``filelock`` package offers the same lock but no way to tell who holds it. POSIX only, like the
signal handling of a run.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from .errors import JobError


class JobLocked(JobError):
    """Another process works on this job right now."""

    def __init__(self, job: str, pid: int | None) -> None:
        self.pid = pid
        holder = f"process {pid}" if pid else "another process"
        stop = f"stop it with `kill {pid}` (it finishes its requests in flight), or " if pid else ""
        super().__init__(
            f"job {job} is being run by {holder}; wait for it to finish (it writes the report), "
            f"or {stop}press Ctrl-C in its terminal. Running the same command afterwards resumes "
            "whatever it left"
        )


class JobLock:
    """Held from :meth:`acquire` until :meth:`release` (or the process ends)."""

    def __init__(self, path: Path, job: str) -> None:
        self.path = path
        self.job = job
        self._fd: int | None = None

    def __repr__(self) -> str:
        return f"<JobLock {self.job} held={self._fd is not None}>"

    def acquire(self) -> JobLock:
        """Take the lock now or raise :class:`JobLocked`; never waits."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise JobLocked(self.job, holder(self.path)) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> JobLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def holder(path: Path) -> int | None:
    """The PID that wrote the lock file last (the holder while it is locked), if readable."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def is_locked(path: Path) -> bool:
    """Whether a process holds the lock now (for ``bulkleads jobs``)."""
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
