"""Where job files live, what makes two runs the same job, and how a job is found again.

A job is identified by a hash of the input's bytes, the target (API and base URL) and the
options that change what is sent. Running the same command again therefore finds the same job
file and resumes it; ``--fresh`` archives the old file and starts over. Rate, concurrency,
report path and logging do not change what is sent, so changing them still resumes.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from .errors import JobError
from .store import JobStore

DEFAULT_STATE_DIR: Final = Path(".bulkleads")
_SUFFIX: Final = ".job.sqlite"
_STORE_FILES: Final = ("", "-wal", "-shm")  # a job file and its WAL companions


def job_id(content_hash: str, identity: dict[str, object]) -> str:
    """16 hex digits: short enough to type, long enough never to collide in one folder."""
    text = json.dumps({"content": content_hash, **identity}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class JobInfo:
    """A line of ``bulkleads jobs``."""

    job_id: str
    path: Path
    meta: dict[str, object]
    states: dict[str, int]
    rows: int


class JobFolder:
    """The state directory: one ``<job id>.job.sqlite`` per job."""

    def __init__(self, root: Path = DEFAULT_STATE_DIR) -> None:
        self.root = root

    def path(self, job: str) -> Path:
        return self.root / f"{job}{_SUFFIX}"

    def scratch(self) -> Path:
        """A fresh file to plan into before the job's identity is known."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / f".planning-{os.getpid()}-{time.monotonic_ns()}{_SUFFIX}"
        remove_store(path)
        return path

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
        if looks_like_id and self.root.exists():
            matches = sorted(self.root.glob(f"{name.lower()}*{_SUFFIX}"))
        matches = [m for m in matches if ".archived" not in m.name]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise JobError(f"{name!r} matches several jobs; give more of the id (bulkleads jobs)")
        if candidate.exists():
            report = str(candidate.resolve())
            for info in self.list():
                if info.meta.get("report") == report:
                    return info.path
        raise JobError(
            f"no job {name!r} in {self.root}; `bulkleads jobs` lists them "
            "(use --state-dir if the job was run from another folder)"
        )

    def list(self) -> Iterator[JobInfo]:
        if not self.root.exists():
            return
        for path in sorted(self.root.glob(f"*{_SUFFIX}"), key=lambda p: p.stat().st_mtime):
            if path.name.startswith(".") or ".archived" in path.name:
                continue
            with JobStore(path) as store:
                yield JobInfo(
                    path.name.removesuffix(_SUFFIX),
                    path,
                    store.meta(),
                    store.bundle_states(),
                    store.row_count(),
                )


def remove_store(path: Path) -> None:
    for suffix in _STORE_FILES:
        Path(f"{path}{suffix}").unlink(missing_ok=True)
