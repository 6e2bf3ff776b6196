"""What sending a job is given, as small frozen values: the pace (:class:`Pace`), what is read
around the writes (:class:`ReadOptions`), and the rest of a run that sending needs
(:class:`Sending`), which the pipeline builds once; and the words it may say (:class:`Say`),
which the console implements. The stage takes these, never the whole run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Final, Protocol

from bulkleads.fields import FieldRules
from bulkleads.hubspot import Api
from bulkleads.hubspot.limits import Limit, in_force
from bulkleads.jobstore.meta import JobMeta
from bulkleads.send.pool import SendOptions
from bulkleads.send.portal_memory import PortalMemory
from bulkleads.token import Token

DEFAULT_SAMPLE: Final = 200  # records a dry run with a token reads, unless --sample says


@dataclass(frozen=True)
class Pace:
    """How fast and how patiently requests go out."""

    rate: float | None = None  # None: the portal's stated limit, else the API's default
    rate_window: float | None = None
    timeout: float = 30.0
    send: SendOptions = field(default_factory=SendOptions)

    @property
    def explicit(self) -> bool:
        return self.rate is not None

    def asked(self, api: Api) -> Limit:
        """The pace asked for, else the API's documented default."""
        default = api.default_pace
        return Limit(self.rate or default.requests, self.rate_window or default.window)

    def choice(self, api: Api, memory: PortalMemory) -> tuple[Limit, str]:
        """The limit a run starts at, and why: the pace asked for, else the portal's own as
        it last stated it, else the API's documented default until its first answer."""
        asked = self.asked(api)
        limit = in_force(asked, memory.limit, explicit=self.explicit)
        if self.explicit and memory.limit is not None and memory.limit.rate < asked.rate:
            window = memory.limit.window
            return limit, (
                f"{Limit(asked.rate * window, window)} asked (--rate), held to the "
                f"portal's {memory.limit} as it last stated it"
            )
        if self.explicit:
            return asked, f"{asked} (--rate / --rate-window, or the profile)"
        if memory.limit is not None:
            ago = _duration_words(time.time() - (memory.seen_at or time.time()))
            return limit, f"{limit}, the portal's limit as it stated it {ago} ago"
        return asked, (
            f"{asked}, the API's documented default until the portal's first answer states "
            "its limit (--rate sets one)"
        )

    def to_meta(self) -> dict[str, object]:
        """Kept so that ``retry`` keeps it; written by every run that sends, so it is always
        the latest run's (None: the API's default)."""
        return {"rate": self.rate, "rate_window": self.rate_window}

    def of_job(self, meta: JobMeta) -> Pace:
        """This pace, or when none was asked the job's: a pace set to spare the portal's
        other apps must hold for a retry too."""
        if self.rate is not None or self.rate_window is not None:
            return self
        return replace(self, rate=meta.rate, rate_window=meta.rate_window)


@dataclass(frozen=True)
class ReadOptions:
    """What is read from the portal around the writes."""

    backup: bool = True  # read each record's current values before writing it
    only_empty: tuple[str, ...] = ()
    force: bool = False  # undo: write back even where another client changed a value since
    verify: bool = False
    sample: int | None = DEFAULT_SAMPLE  # a dry run's reads; None: every record

    def identity(self) -> dict[str, object]:
        # Reading decides what is sent: a record already up to date is skipped.
        return {"backup": self.backup, "only_empty": sorted(self.only_empty)}

    def to_meta(self) -> dict[str, object]:
        return {"backup": self.backup, "only_empty": list(self.only_empty), "verify": self.verify}

    def of_job(self, meta: JobMeta) -> ReadOptions:
        """These options with the reading a job was planned with (jobs from before reading
        existed: off). Verifying is part of the job: a retry of a job run with --verify
        reads back what it writes, or a silent no-op would be reported updated."""
        return replace(
            self,
            backup=meta.backup,
            only_empty=meta.only_empty,
            verify=self.verify or meta.verify,
        )


class Tick(Protocol):
    """A progress display of one phase."""

    def advance(self, state: str) -> None: ...

    def close(self) -> None: ...


class Say(Protocol):
    """What sending says while it runs (the console's :class:`Reporter` is one)."""

    def info(self, message: str, **data: object) -> None: ...

    def warn(self, message: str, **data: object) -> None: ...

    def progress(self, total: int | None, label: str, unit: str) -> Tick: ...


@dataclass(frozen=True)
class Sending:
    """A run as sending sees it, fixed before the first request: where and how fast, what is
    read, the rules' words, and the requests made before sending (the property read), which
    the pacer counts as its own."""

    api: Api
    base_url: str
    token: Token | None
    rules: FieldRules
    pace: Pace = field(default_factory=lambda: Pace())
    reading: ReadOptions = field(default_factory=lambda: ReadOptions())
    memory: PortalMemory = field(default_factory=lambda: PortalMemory(None))
    made: tuple[float, ...] = ()  # monotonic starts of the requests made before sending
    command: str = ""  # the command line that resumes the job


def _duration_words(seconds: float) -> str:
    """``42 s``, ``3 min``, ``2 h``: how long ago, roughly."""
    if seconds < 90:
        return f"{max(0, round(seconds))} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{round(seconds / 3600)} h"
