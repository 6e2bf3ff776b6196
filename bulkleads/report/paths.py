"""What an output path may be: a regular file (or none yet), never a device, pipe or socket.

Every output bulkleads writes (report, diff, ``--summary``, ``--html``) is written beside its
path and renamed over it, so that a reader never sees half of it. Renamed over ``/dev/null``
(as root) that replaces the system's device with a file of lead data; over a FIFO, a pipe
another program reads becomes a file it never sees. So an existing path that is not a regular
file is refused before the first request. A symlink is followed (the caller resolves the
path): the file it points to is what is checked and replaced, and the link stays a link. ``-``
is refused rather than taken for stdout: a report leads back to its job only as a file.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from bulkleads.errors import UsageError


def check_regular(path: Path, flag: str) -> None:
    """Raise :class:`UsageError` (exit 2) unless ``path`` is absent or a regular file."""
    if path.name == "-":
        raise UsageError(
            f"{flag} - would be a file named '-': bulkleads writes this output to a file "
            "(it leads back to the job), not to stdout; give a path"
        )
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise UsageError(f"{flag} {path}: {exc.strerror}; give another path") from None
    if stat.S_ISDIR(mode):
        raise UsageError(f"{flag} {path} is a folder; give a file path")
    if not stat.S_ISREG(mode):
        raise UsageError(
            f"{flag} {path} is not a regular file (a device, pipe or socket): bulkleads "
            "replaces its outputs whole, which would replace it; give a file path"
        )
