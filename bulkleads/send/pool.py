"""The async worker pool: pending bundles from the store, through pacing and retries, to the
target, and each result back into the store the moment it arrives.

What ends a run early, and what the unsent bundles become:

- 401/403: the token is refused; nothing more is sent, unsent bundles are ``not_sent``.
- a ``DAILY`` 429, or ``X-HubSpot-RateLimit-Daily-Remaining`` down to ``--daily-reserve``:
  unsent bundles are ``deferred`` to the next run of the same command.
- :meth:`Sender.stop` (Ctrl-C, SIGTERM): no new bundle is taken, requests in flight finish
  within a grace period, unsent bundles are ``deferred``.

Retries (tenacity, a policy object per batch that needs one, never shared between tasks) are
bounded by attempts and by total time, with full-jitter exponential backoff. A 429 pauses the
whole pool through the pacer rather than one worker, so the retry itself waits nothing extra.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, cast

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_result,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from bulkleads.bundle import RESUMABLE, Bundle, Mark, State
from bulkleads.hubspot.http import LOCKED_WAIT_SECONDS, Endpoint, Outcome, Target
from bulkleads.hubspot.limits import Limit, RateHeaders, retry_after_seconds
from bulkleads.jobstore.requests import Timeline
from bulkleads.jobstore.store import JobStore
from bulkleads.send.pacing import Pacer
from bulkleads.send.phases import Phase, StopReason, WritePhase

MAX_ANSWER: Final = 1 << 20  # bytes of an answer read; HubSpot's largest errors are a few KiB
_FRAMING: Final = frozenset({"content-length", "content-encoding", "transfer-encoding"})
_PAGE: Final = 500
_SAY_PAUSES_FROM: Final = 30.0  # seconds: a pause this long is said, not waited in silence
_LOG: Final = logging.getLogger("bulkleads.send.pool")


@dataclass
class SendOptions:
    concurrency: int = 4
    max_attempts: int = 6
    max_retry_seconds: float = 300.0
    daily_reserve: int = 0
    grace_seconds: float = 15.0
    backoff_base: float = 0.5
    backoff_max: float = 30.0


@dataclass
class SendStats:
    """Counts the console summary reconciles against the store."""

    requests: int = 0  # every request of the run, those before sending included
    before: int = 0  # made before sending: the portal's definitions, link types and keys
    statuses: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    rate_limited: int = 0
    error_responses: int = 0
    stop_reason: StopReason | None = None
    stop_detail: str | None = None
    elapsed: float = 0.0
    limit: Limit | None = None  # the limit in force at the end of the run
    utilization: float | None = None  # accepted requests over what the limit admitted

    @property
    def error_share(self) -> float:
        return self.error_responses / self.requests if self.requests else 0.0

    def add(self, other: SendStats) -> None:
        """Fold in the counts of a later phase of the same run."""
        self.requests += other.requests
        self.statuses.update(other.statuses)
        self.retries += other.retries
        self.rate_limited += other.rate_limited
        self.error_responses += other.error_responses
        self.elapsed += other.elapsed
        if self.stop_reason is None:
            self.stop_reason, self.stop_detail = other.stop_reason, other.stop_detail


def _bounded(headers: httpx.Headers) -> bool:
    """An answer whose declared length is within the cap and that is sent as it is."""
    length = headers.get("content-length", "")
    return length.isdigit() and int(length) <= MAX_ANSWER and "content-encoding" not in headers


class Sender:
    """Sends one phase of a job's requests (by default: write the resumable bundles). Create
    one per phase, inside the event loop; phases of one run share the pacer."""

    def __init__(
        self,
        store: JobStore,
        target: Endpoint,
        pacer: Pacer,
        transport: httpx.AsyncBaseTransport,
        options: SendOptions,
        *,
        timeout: float = 30.0,
        on_result: Callable[[str], None] | None = None,
        timeline: Timeline | None = None,
    ) -> None:
        self._store = store
        self._target = target
        self._pacer = pacer
        self._transport = transport
        # Each request's timeouts, as an httpx client would set them; a connection that cannot
        # be made in 10 s will not be made by waiting longer.
        self._timeout = httpx.Timeout(timeout, connect=min(10.0, timeout)).as_dict()
        # httpx's read timeout is per chunk: a body that drips a byte a second never trips it.
        # The whole answer, body included, must come within --timeout.
        self._whole = timeout
        self._options = options
        self._on_result = on_result
        self._timeline = timeline or Timeline()
        self._stopping = asyncio.Event()
        self._abandoning = asyncio.Event()
        self.stats = SendStats()

    def __repr__(self) -> str:
        return f"<Sender {self.stats.requests} requests, stopping={self._stopping.is_set()}>"

    def stop(self, reason: StopReason, detail: str) -> None:
        """Take no new bundle; the first reason given is the one reported."""
        if not self._stopping.is_set():
            self.stats.stop_reason, self.stats.stop_detail = reason, detail
            self._stopping.set()

    def abandon(self) -> None:
        """Stop waiting for the requests in flight (a second Ctrl-C): their records become
        ``unconfirmed``, read back by the next run, and the report is written now."""
        self._abandoning.set()

    async def run(
        self, states: tuple[str, ...] = RESUMABLE, phase: Phase | None = None
    ) -> SendStats:
        """Do ``phase`` (default: write every bundle in ``states``); returns when every bundle
        it takes is settled, or the run stops."""
        # The default phase writes bundles: its endpoint is then an API's Target.
        self._phase = phase or WritePhase(self._store, cast(Target, self._target), states)
        started = time.monotonic()
        queue: asyncio.Queue[list[Bundle] | None] = asyncio.Queue(
            maxsize=self._options.concurrency * 2
        )
        workers = [asyncio.create_task(self._work(queue)) for _ in range(self._options.concurrency)]
        feeder = asyncio.create_task(self._feed(queue))
        finished: asyncio.Future[list[None]] = asyncio.gather(*workers)
        stopping = asyncio.create_task(self._stopping.wait())
        try:
            either: list[asyncio.Future[Any]] = [finished, stopping]
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            if not finished.done():
                # Stopping: take nothing new, let requests in flight finish within the grace.
                feeder.cancel()
                while not queue.empty():
                    queue.get_nowait()
                for _ in workers:
                    queue.put_nowait(None)
                abandoning = asyncio.create_task(self._abandoning.wait())
                waits: list[asyncio.Future[Any]] = [finished, abandoning]
                await asyncio.wait(
                    waits,
                    timeout=self._options.grace_seconds,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                abandoning.cancel()
        finally:
            for task in (stopping, feeder, *workers):
                task.cancel()
            await asyncio.gather(stopping, feeder, *workers, return_exceptions=True)
            self._timeline.flush()
            self._phase.settle_unsent(self.stats.stop_reason, self.stats.stop_detail)
            self.stats.elapsed = time.monotonic() - started
        if finished.done() and not finished.cancelled():
            error = finished.exception()
            # A worker cancelled once the grace ran out (or a second Ctrl-C) is a request
            # abandoned, not a bug: its bundle is settled above (unconfirmed: read back next).
            if error is not None and not isinstance(error, asyncio.CancelledError):
                raise error  # a bug in a worker must not hide
        return self.stats

    async def _feed(self, queue: asyncio.Queue[list[Bundle] | None]) -> None:
        after = 0
        size = self._target.batch_size
        while not self._stopping.is_set():
            page = self._phase.take(after, max(_PAGE, size))
            if not page:
                break
            for start in range(0, len(page), size):
                if self._stopping.is_set():
                    break
                await queue.put(page[start : start + size])
            after = page[-1].first_row
        for _ in range(self._options.concurrency):
            await queue.put(None)

    async def _work(self, queue: asyncio.Queue[list[Bundle] | None]) -> None:
        while (batch := await queue.get()) is not None:
            if self._stopping.is_set():
                return
            self._phase.begin(batch)
            results = [(b, o, self._settle(b, o, n)) for b, o, n in await self._deliver(batch, 0)]
            self._phase.record(results)
            if self._on_result:
                for _, _, mark in results:
                    self._on_result(mark[0])

    async def _deliver(
        self, batch: list[Bundle], earlier: int
    ) -> list[tuple[Bundle, Outcome, int]]:
        """Send one batch until it settles; ``earlier`` counts attempts made for a larger batch
        this one was split from. Returns each bundle's outcome and its attempts so far."""
        attempts = 0

        async def attempt() -> tuple[Outcome, dict[str, Outcome]]:
            nonlocal attempts
            async with self._pacer.slot() as started:
                attempts += 1
                return await self._attempt(batch, started, earlier + attempts)

        # Most batches settle at their first attempt, which is made outside tenacity (its
        # machinery is costly per request); tenacity takes over from the first
        # retryable answer, which it sees as its own attempt 1, so its policy is unchanged.
        result = await attempt()
        if self._should_retry(result):
            made = [result]

            async def again() -> tuple[Outcome, dict[str, Outcome]]:
                return made.pop() if made else await attempt()

            result = await self._retrying()(again)
        outcome, exceptions = result
        self.stats.retries += attempts - 1
        tried = earlier + attempts
        if outcome.kind == "split" and len(batch) > 1:
            # The whole batch was refused. Records the answer named fail; the rest go again,
            # in halves when it named none, so one bad record cannot fail the others.
            named = [b for b in batch if b.guid in exceptions]
            rest = [b for b in batch if b.guid not in exceptions]
            settled = [(b, exceptions[b.guid], b.attempts + tried) for b in named]
            parts = [rest] if named else [rest[: len(rest) // 2], rest[len(rest) // 2 :]]
            for part in parts:
                if part:
                    settled += await self._deliver(part, tried)
            return settled
        if outcome.kind == "split":
            outcome = Outcome("final", outcome.status, outcome.reason, outcome.headers)
        return [(b, exceptions.get(b.guid, outcome), b.attempts + tried) for b in batch]

    async def _attempt(
        self, batch: list[Bundle], started: float, attempt: int
    ) -> tuple[Outcome, dict[str, Outcome]]:
        request = self._phase.build(batch)
        request.extensions["timeout"] = self._timeout
        self.stats.requests += 1
        try:
            try:
                async with asyncio.timeout(self._whole):
                    response = await self._exchange(request)
            except TimeoutError:
                whole = f"no whole answer within {self._whole:g} s"
                raise httpx.ReadTimeout(whole, request=request) from None
        except httpx.HTTPError as exc:
            outcome = self._target.transport_failure(exc)
            _LOG.debug("%s -> %s", self._describe(request), outcome.reason)
            self._pacer.observe(None, RateHeaders(), started)
            self._timeline.add(started, None, self._phase.label, attempt, self._pacer.others)
            return outcome, {}
        outcome, exceptions = self._phase.classify(response, batch)
        if _LOG.isEnabledFor(logging.DEBUG):  # a description is not free, and this is per request
            _LOG.debug(
                "%s -> %s %s",
                self._describe(request),
                response.status_code,
                outcome.reason or "",
            )
        self.stats.statuses[str(response.status_code)] += 1
        if response.status_code >= 400:
            self.stats.error_responses += 1
        info = RateHeaders.parse(response.headers)
        self._pacer.observe(response.status_code, info, started)
        self._timeline.add(
            started, response.status_code, self._phase.label, attempt, self._pacer.others
        )
        self._react(outcome, info)
        return outcome, exceptions

    async def _exchange(self, request: httpx.Request) -> httpx.Response:
        """One request and at most :data:`MAX_ANSWER` bytes of its answer, straight through
        the transport: an ``httpx.AsyncClient`` would add cookies, auth and redirect handling
        that this tool must not use (a redirect could carry the token elsewhere), for a tenth
        of our CPU. Memory stays flat whatever a server or proxy sends: past the cap the
        connection is dropped and the answer keeps its first megabyte."""
        response = await self._transport.handle_async_request(request)
        response.request = request
        try:
            if _bounded(response.headers):  # the usual answer: empty or small, and says so
                await response.aread()
                return response
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk[: MAX_ANSWER - len(body)]
                if len(body) >= MAX_ANSWER:
                    break
        finally:
            await response.aclose()
        headers = [(k, v) for k, v in response.headers.multi_items() if k not in _FRAMING]
        return httpx.Response(
            response.status_code, headers=headers, content=bytes(body), request=request
        )

    @staticmethod
    def _describe(request: httpx.Request) -> str:
        """Method and path for the debug log: never the query, which may hold the token."""
        return f"{request.method} {request.url.path}"

    def _react(self, outcome: Outcome, info: RateHeaders) -> None:
        """Pool-wide consequences of one answer: pauses and stops."""
        headers = outcome.headers or httpx.Headers()
        if outcome.status == 429:
            self.stats.rate_limited += 1
        if outcome.kind == "retry" and outcome.status == 429:
            asked = retry_after_seconds(headers.get("retry-after"), interval_ms=info.interval_ms)
            wait = min(asked, self._options.max_retry_seconds)  # every pause is bounded
            if wait >= _SAY_PAUSES_FROM:
                _LOG.warning(
                    "HubSpot's 429 asks to wait %.0f s; every request pauses %.0f s "
                    "(at most --max-retry-time)",
                    asked,
                    wait,
                )
            self._pacer.pause(wait)
        elif outcome.kind == "auth":
            self.stop("auth", f"HubSpot refused the token ({outcome.status}: {outcome.reason})")
        elif outcome.kind == "daily":
            self.stop("daily", f"the portal's daily limit is reached ({outcome.reason})")
        if (
            outcome.kind == "ok"
            and info.daily_remaining is not None
            and info.daily_remaining <= self._options.daily_reserve
        ):
            self.stop(
                "daily",
                f"daily requests remaining reached --daily-reserve ({info.daily_remaining} left)",
            )

    def _retrying(self) -> AsyncRetrying:
        """A fresh policy per batch: tenacity keeps each call's state on the object."""
        return AsyncRetrying(
            stop=stop_after_attempt(self._options.max_attempts)
            | stop_after_delay(self._options.max_retry_seconds),
            wait=self._wait,
            retry=retry_if_result(self._should_retry),
            retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
        )

    def _should_retry(self, result: tuple[Outcome, dict[str, Outcome]]) -> bool:
        if result[0].kind != "retry":
            return False
        return not self._stopping.is_set()

    def _wait(self, state: RetryCallState) -> float:
        result = state.outcome.result() if state.outcome else None
        if result is not None and result[0].status == 429:
            return 0.0  # the pacer already holds the whole pool for the pause
        jitter = wait_random_exponential(
            multiplier=self._options.backoff_base, max=self._options.backoff_max
        )
        if result is not None and result[0].status == 423:  # HubSpot asks for 2 s at least
            return max(LOCKED_WAIT_SECONDS, float(jitter(state)))
        return float(jitter(state))

    def _settle(self, bundle: Bundle, outcome: Outcome, attempts: int) -> Mark:
        """The state a bundle ends in after this run's attempts."""
        if outcome.kind == "ok":
            state, reason = State.DONE, None
        elif outcome.kind == "auth":
            state, reason = State.NOT_SENT, outcome.reason
        elif outcome.kind == "unconfirmed":
            state, reason = State.UNCONFIRMED, outcome.reason
        elif outcome.kind == "daily" or (outcome.kind == "retry" and self._stopping.is_set()):
            state, reason = State.DEFERRED, outcome.reason
        else:
            state = State.FAILED
            reason = outcome.reason
            if outcome.kind == "retry":
                reason = f"gave up after {attempts} attempts: {outcome.reason}"
        return Mark(state, outcome.status, attempts, reason, bundle.guid)
