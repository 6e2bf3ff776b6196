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

from bulkleads.errors import JobError


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
            raise self._busy() from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {self.job}\n".encode())
        self._fd = fd
        return self

    def _busy(self) -> JobError:
        return JobLocked(self.job, holder(self.path)[0])

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> JobLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def holder(path: Path) -> tuple[int | None, str | None]:
    """The PID and job that wrote the lock file last (the holder while it is locked), if
    readable."""
    try:
        words = path.read_text(encoding="ascii").split()
    except (OSError, UnicodeDecodeError):
        return None, None
    pid = int(words[0]) if words and words[0].isdigit() else None
    return pid, words[1] if len(words) > 1 else None


class PortalBusy(JobError):
    """Another job writes the same object on the same portal right now."""

    def __init__(self, what: str, job: str | None, pid: int | None) -> None:
        other = f"job {job} (process {pid})" if job and pid else "another job"
        super().__init__(
            f"{other} is writing {what} on this portal right now. Two jobs writing the same "
            "records at once back up each other's values, so an undo of one could put back "
            "what the other removed. Wait for it to finish (`bulkleads jobs` shows it "
            "running), or pass --alongside-running-jobs when the two share no record"
        )


class PortalLock(JobLock):
    """Held by a job while it writes one object type of one portal (base URL and token)."""

    def __init__(self, path: Path, job: str, what: str) -> None:
        super().__init__(path, job)
        self.what = what

    def _busy(self) -> JobError:
        pid, job = holder(self.path)
        return PortalBusy(self.what, job, pid)


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
