"""Where job files live, what makes two runs the same job, and how a job is found again.

A job is identified by a hash of the input's bytes, the target (API and base URL) and the
options that change what is sent. Running the same command again therefore finds the same job
file and resumes it; ``--fresh`` archives the old file and starts over. Rate, concurrency,
report path and logging do not change what is sent, so changing them still resumes.

Jobs live in the user's state directory (``platformdirs``: ``~/.local/state/bulkleads`` on
Linux), not in the current directory, so cron (which starts in ``$HOME``), a shell in another
folder and ``sudo -u`` the same user all find the same job. ``BULKLEADS_STATE_DIR`` or
``--state-dir`` choose another folder. Jobs started under the old default, ``./.bulkleads``,
are moved into the state directory the first time they are asked for.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import platformdirs

from bulkleads.bundle import RESUMABLE
from bulkleads.errors import JobError, UsageError
from bulkleads.jobstore.lock import JobLock, is_locked
from bulkleads.jobstore.meta import JobMeta
from bulkleads.jobstore.store import JobStore

STATE_DIR_VAR: Final = "BULKLEADS_STATE_DIR"
LEGACY_STATE_DIR: Final = Path(".bulkleads")  # where jobs of older versions may still be
_SUFFIX: Final = ".job.sqlite"
_STORE_FILES: Final = ("", "-wal", "-shm")  # a job file and its WAL companions


def default_state_dir() -> Path:
    """``$BULKLEADS_STATE_DIR``, else the platform's user state directory."""
    return Path(os.environ.get(STATE_DIR_VAR) or platformdirs.user_state_path("bulkleads"))


def job_id(content_hash: str, identity: dict[str, object]) -> str:
    """16 hex digits: short enough to type, long enough never to collide in one folder."""
    text = json.dumps({"content": content_hash, **identity}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class JobInfo:
    """A line of ``bulkleads jobs``."""

    job_id: str
    path: Path
    meta: JobMeta
    states: dict[str, int]
    rows: int
    running: bool = False
    damage: str | None = None  # why the job file cannot be read; None when it can
    archived: bool = False
    links_left: int = 0  # links not made yet (found or not): a job is done when they are

    @property
    def created(self) -> str:
        """When the job was planned (its file's time for jobs from before that was kept)."""
        if self.meta.created is not None:
            return self.meta.created
        mtime = self.path.stat().st_mtime
        return datetime.fromtimestamp(mtime, UTC).isoformat(timespec="seconds")

    @property
    def size(self) -> int:
        return sum(p.stat().st_size for p in _files(self.path))

    @property
    def finished(self) -> bool:
        """Nothing of it is left to send, records or links (archived jobs are finished by
        definition)."""
        return self.archived or not (any(self.states.get(s) for s in RESUMABLE) or self.links_left)


class JobFolder:
    """The state directory: one ``<job id>.job.sqlite`` per job."""

    def __init__(self, root: Path | None = None, legacy: Path | None = LEGACY_STATE_DIR) -> None:
        self.root = root if root is not None else default_state_dir()
        same = legacy is not None and legacy.resolve() == self.root.resolve()
        self._legacy = None if same else legacy

    def path(self, job: str) -> Path:
        return self.root / f"{job}{_SUFFIX}"

    def lock(self, job: str) -> JobLock:
        """The job's lock (not yet taken); every command that touches the job holds it."""
        return JobLock(self.root / f"{job}.lock", job)

    def lock_for(self, path: Path) -> JobLock:
        """The lock of the job stored at ``path``."""
        job = job_of(path)
        return JobLock(path.with_name(f"{job}.lock"), job)

    def adopt_legacy(self, job: str) -> Path | None:
        """Move a job found under the old ``./.bulkleads`` default into this folder; returns
        where it was, or None when there is nothing to move. Call it holding the job's lock."""
        if self._legacy is None or self.path(job).exists():
            return None
        old = self._legacy / f"{job}{_SUFFIX}"
        if not old.exists():
            return None
        self.root.mkdir(parents=True, exist_ok=True)
        for suffix in _STORE_FILES:
            src = Path(f"{old}{suffix}")
            if src.exists():
                shutil.move(src, f"{self.path(job)}{suffix}")
        return old

    def scratch(self) -> Path:
        """A fresh file to plan into before the job's identity is known. Scratch files that a
        killed run left behind (their process is gone) are removed first."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".probe-{os.getpid()}"
            probe.touch()
            probe.unlink()
        except OSError as exc:
            raise UsageError(
                f"cannot write job files in {self.root} ({exc.strerror}); give a folder you "
                f"can write with --state-dir DIR (or ${STATE_DIR_VAR})"
            ) from None
        for leftover in self.root.glob(f".planning-*{_SUFFIX}"):
            pid = leftover.name.split("-")[1]
            if pid.isdigit() and int(pid) != os.getpid() and not process_running(int(pid)):
                remove_store(leftover)
        path = self.root / f".planning-{os.getpid()}-{time.monotonic_ns()}{_SUFFIX}"
        remove_store(path)
        return path

    @contextlib.contextmanager
    def planning(self, *, keep: bool) -> Iterator[Path]:
        """A scratch file to plan into: removed if planning fails, or once done when it is
        not to be kept (a dry run plans, reports and keeps nothing)."""
        scratch = self.scratch()
        try:
            yield scratch
        except BaseException:
            remove_store(scratch)
            raise
        if not keep:
            remove_store(scratch)

    def archive(self, job: str) -> Path:
        """Move a job aside (``--fresh``); its history stays readable."""
        current = self.path(job)
        archived = self.root / f"{job}.{time.strftime('%Y%m%dT%H%M%S')}.archived{_SUFFIX}"
        for suffix in _STORE_FILES:
            src = Path(f"{current}{suffix}")
            if src.exists():
                os.replace(src, f"{archived}{suffix}")
        return archived

    def adopt(self, scratch: Path, job: str) -> Path:
        """Make a planned scratch file the job's file."""
        target = self.path(job)
        os.replace(scratch, target)
        return target

    def find(self, name: str) -> Path:
        """A job by id (or a unique prefix), by job file path, or by the report it wrote."""
        candidate = Path(name)
        if candidate.name.endswith(_SUFFIX) and candidate.exists():
            return candidate
        looks_like_id = bool(name) and all(c in "0123456789abcdef" for c in name.lower())
        matches = []
        if looks_like_id:
            matches = _ids(self.root, name.lower())
            if not matches and self._legacy is not None:
                legacy = [job_of(m) for m in _ids(self._legacy, name.lower())]
                if len(legacy) == 1 and self.adopt_legacy(legacy[0]) is not None:
                    matches = _ids(self.root, name.lower())
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise JobError(f"{name!r} matches several jobs; give more of the id (bulkleads jobs)")
        if candidate.exists():
            resolved = str(candidate.resolve())
            infos = list(self.list())
            writers = [info for info in infos if resolved in _reports(info.meta)]
            if writers:
                return _last_writer(writers, candidate).path
            of_input = [info for info in infos if info.meta.input_path == resolved]
            if of_input:  # the input's latest job (list() is oldest first)
                return of_input[-1].path
        raise JobError(
            f"no job {name!r} in {self.root}; `bulkleads jobs` lists them "
            "(use --state-dir if the job was run from another folder)"
        )

    def list(self, *, archived: bool = False) -> Iterator[JobInfo]:
        """Every current job (and archived ones when asked), oldest first; a file that cannot
        be read is listed with its damage, so one bad file never hides the others."""
        if not self.root.exists():
            return
        for path in sorted(self.root.glob(f"*{_SUFFIX}"), key=lambda p: p.stat().st_mtime):
            old = ".archived" in path.name
            if path.name.startswith(".") or (old and not archived):
                continue
            job = job_of(path)
            running = not old and is_locked(self.lock_for(path).path)
            try:
                with JobStore(path) as store:
                    info = JobInfo(
                        job,
                        path,
                        JobMeta.read(store),
                        store.bundle_states(),
                        store.row_count(),
                        running,
                        archived=old,
                        links_left=store.links.left(),
                    )
            except JobError as error:
                info = JobInfo(
                    job, path, JobMeta(), {}, 0, running, damage=str(error), archived=old
                )
            yield info

    def prune(self, older_than: float, *, now: float | None = None) -> tuple[tuple[str, int], ...]:
        """Remove finished and archived job files not changed for ``older_than`` seconds; a
        job running, with leads left to send, or unreadable is kept. Returns each removed
        job and the bytes it freed."""
        horizon = (time.time() if now is None else now) - older_than
        removed: tuple[tuple[str, int], ...] = ()
        for info in self.list(archived=True):
            if info.running or info.damage or not info.finished:
                continue
            if info.path.stat().st_mtime > horizon:
                continue
            freed = info.size
            for path in _files(info.path):
                path.unlink(missing_ok=True)
            if not info.archived:
                self.lock_for(info.path).path.unlink(missing_ok=True)
            removed += ((info.job_id, freed),)
        return removed


def fingerprint(path: Path) -> dict[str, object]:
    """What tells this very file from any other written at the same path: a report is
    replaced whole (a new inode), so device, inode, size and nanosecond time name one write.
    Two jobs may write one report path; the file leads back to the one that wrote it last."""
    info = path.stat()
    return {
        "path": str(path),
        "dev": info.st_dev,
        "ino": info.st_ino,
        "size": info.st_size,
        "mtime_ns": info.st_mtime_ns,
    }


def _reports(meta: JobMeta) -> set[str]:
    """The report paths a job wrote: the one it was planned with and the one it wrote last
    (a resumed run may name another, e.g. a dated one)."""
    written = meta.report_written.get("path") if meta.report_written else None
    return {str(p) for p in (meta.report, written) if p}


def _last_writer(writers: list[JobInfo], report: Path) -> JobInfo:
    """The job that wrote ``report`` as it is now. Two jobs may have written one path
    (``--report`` given twice); undoing, retrying or reporting the wrong one would act on
    records the user never meant, so when the file's fingerprint names no single job (edited
    since, or written by a version that kept none) the choice goes back to the user."""
    if len(writers) == 1:
        return writers[0]
    now = fingerprint(report)
    same = [w for w in writers if w.meta.report_written == {**now, "path": str(report.resolve())}]
    if len(same) == 1:
        return same[0]
    listed = "; ".join(f"{w.job_id} (planned {w.created}, input {w.meta.input})" for w in writers)
    raise JobError(
        f"{report} was written by {len(writers)} jobs and its file no longer shows which wrote "
        f"it last (changed since): {listed}. Name the job by its id instead, e.g. "
        f"`bulkleads undo {writers[-1].job_id}`"
    )


def job_of(path: Path) -> str:
    """The id of the job stored at ``path``."""
    return path.name.removesuffix(_SUFFIX)


def remove_store(path: Path) -> None:
    for suffix in _STORE_FILES:
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _ids(folder: Path, prefix: str) -> list[Path]:
    """The current (not archived) job files in ``folder`` whose id starts with ``prefix``."""
    if not folder.exists():
        return []
    return [m for m in sorted(folder.glob(f"{prefix}*{_SUFFIX}")) if ".archived" not in m.name]


def _files(path: Path) -> list[Path]:
    """A job file and the WAL companions it has."""
    return [p for p in (Path(f"{path}{s}") for s in _STORE_FILES) if p.exists()]


def parse_age(text: str) -> float:
    """Seconds in ``30d``, ``12h``, ``90m`` or ``2w``."""
    match = re.fullmatch(r"\s*(\d+)\s*([mhdw])\s*", text)
    if match is None:
        raise UsageError(
            f"--older-than takes a number and a unit, e.g. 30d, 12h or 2w; not {text!r}"
        )
    return int(match.group(1)) * {"m": 60, "h": 3600, "d": 86400, "w": 604800}[match.group(2)]


def process_running(pid: int) -> bool:
    """Whether a process of that id runs (another bulkleads run, planning or sending)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
