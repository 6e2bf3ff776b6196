"""The sender against respx-mocked answers, on a virtual clock: retries, pauses and stops."""

from __future__ import annotations

import asyncio
import json
from itertools import pairwise
from pathlib import Path

import httpx
import pytest
import respx

from bulkleads.hubspot.leads_v1 import LeadsV1Target
from bulkleads.jobstore.store import JobStore
from bulkleads.send.pacing import Pacer
from bulkleads.send.pool import MAX_ANSWER, Sender, SendOptions, SendStats
from bulkleads.token import Token
from tests.conftest import run_virtual

BASE = "https://api.example.test"
SECRET = "pat-na1-11111111-2222-3333-4444-555555555555"
LEAD = r"/leads/v1/lead/(?P<guid>[^/?]+)"


def make_store(tmp_path: Path, count: int = 3) -> JobStore:
    store = JobStore(tmp_path / "job.sqlite")
    guids = [f"g{i}" for i in range(1, count + 1)]
    store.add_rows(
        (i, i + 1, g, json.dumps({"city": f"C{i}"}), "city", None) for i, g in enumerate(guids, 1)
    )
    store.add_bundles(
        (g, json.dumps({"city": f"C{i}"}), i, "pending", None) for i, g in enumerate(guids, 1)
    )
    return store


def send(store: JobStore, answers, **options: object) -> tuple[SendStats, list[float]]:
    """Run a sender whose PUTs get ``answers`` (a respx side effect); returns stats and times."""
    times: list[float] = []

    async def scenario() -> SendStats:
        loop = asyncio.get_running_loop()

        def answer(request: httpx.Request, guid: str) -> httpx.Response:
            times.append(loop.time())
            return answers(request, guid) if callable(answers) else next(answers)

        with respx.mock(base_url=BASE, assert_all_called=False) as mock:
            mock.put(path__regex=LEAD).mock(side_effect=answer)
            async with httpx.AsyncHTTPTransport() as transport:
                target = LeadsV1Target(BASE, Token(SECRET))
                settings = SendOptions(**{"concurrency": 1, **options})
                return await Sender(store, target, Pacer(10, 1.0), transport, settings).run()

    return run_virtual(scenario()), times


def states(store: JobStore) -> dict[str, tuple[str, int | None, int]]:
    return {r.guid: (r.state, r.status, r.attempts) for r in store.report_rows()}


def test_request_carries_guid_changed_fields_json_and_token(tmp_path: Path) -> None:
    """Body = changed fields + guid, Content-Type JSON, token in the query, nothing else."""
    seen: list[httpx.Request] = []

    def ok(request: httpx.Request, guid: str) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    store = make_store(tmp_path, 1)
    stats, _ = send(store, ok)
    request = seen[0]
    assert json.loads(request.content) == {"city": "C1", "guid": "g1"}
    assert request.headers["content-type"] == "application/json"
    assert request.url.params["access_token"] == SECRET
    assert stats.requests == 1 and store.bundle_states() == {"done": 1}


def test_429_pauses_then_succeeds(tmp_path: Path) -> None:
    """429 then 204: the lead is updated on attempt 2, after the interval from the headers."""
    answers = iter(
        [
            httpx.Response(
                429,
                json={"policyName": "TEN_SECONDLY_ROLLING"},
                headers={"X-HubSpot-RateLimit-Interval-Milliseconds": "10000"},
            ),
            httpx.Response(204),
            httpx.Response(204),
            httpx.Response(204),
        ]
    )
    store = make_store(tmp_path)
    stats, times = send(store, answers)
    assert states(store)["g1"] == ("done", 204, 2)
    assert times[1] - times[0] >= 10
    assert (stats.rate_limited, stats.retries) == (1, 1)


def test_retry_after_is_honoured(tmp_path: Path) -> None:
    """A plausible Retry-After sets the pause, for the whole pool."""
    answers = iter(
        [
            httpx.Response(429, headers={"Retry-After": "3"}),
            httpx.Response(204),
            httpx.Response(204),
            httpx.Response(204),
        ]
    )
    _, times = send(make_store(tmp_path), answers, concurrency=3)
    assert 3 <= times[1] - times[0] < 4


def test_daily_429_defers_everything_left(tmp_path: Path) -> None:
    """A DAILY 429 is not retried: the lead and all unsent ones are deferred."""
    answers = iter([httpx.Response(204), httpx.Response(429, json={"policyName": "DAILY"})])
    store = make_store(tmp_path)
    stats, times = send(store, answers)
    assert stats.stop_reason == "daily"
    assert [s[0] for s in states(store).values()] == ["done", "deferred", "deferred"]
    assert len(times) == 2


def test_daily_remaining_at_reserve_stops_after_that_success(tmp_path: Path) -> None:
    """Daily-Remaining down to --daily-reserve: stop sending, the rest deferred."""
    answers = iter([httpx.Response(204, headers={"X-HubSpot-RateLimit-Daily-Remaining": "5"})])
    store = make_store(tmp_path)
    stats, _ = send(store, answers, daily_reserve=5)
    assert stats.stop_reason == "daily"
    assert [s[0] for s in states(store).values()] == ["done", "deferred", "deferred"]


def test_401_stops_everything_and_nothing_else_is_sent(tmp_path: Path) -> None:
    """A refused token stops the pool: the rows are not_sent and their reason says why."""
    store = make_store(tmp_path, 5)
    stats, times = send(store, lambda r, g: httpx.Response(401, json={"message": "bad token"}))
    assert stats.stop_reason == "auth"
    assert len(times) == 1
    assert {s[0] for s in states(store).values()} == {"not_sent"}
    assert all("bad token" in (r.reason or "") for r in store.report_rows())


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_then_success(tmp_path: Path, status: int) -> None:
    """Transient server errors are retried with backoff."""
    answers = iter(
        [httpx.Response(status), httpx.Response(204), httpx.Response(204), httpx.Response(204)]
    )
    store = make_store(tmp_path)
    send(store, answers)
    assert states(store)["g1"] == ("done", 204, 2)


def test_backoff_grows_from_the_first_retry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first attempt runs outside tenacity; its policy still numbers the retries from it:
    with the jitter pinned to its top, the waits are 0.5 s then 1 s (base 0.5, doubling)."""
    monkeypatch.setattr("tenacity.wait.random.uniform", lambda low, high: high)
    answers = iter([httpx.Response(503), httpx.Response(503), httpx.Response(204)])
    store = make_store(tmp_path, 1)
    stats, times = send(store, answers)
    assert states(store)["g1"] == ("done", 204, 3)
    assert [round(b - a, 2) for a, b in pairwise(times)] == [0.5, 1.0]
    assert stats.retries == 2


def test_423_locked_waits_the_two_seconds_hubspot_asks_then_succeeds(tmp_path: Path) -> None:
    """HubSpot answers 423 while it digests a very large sync and asks for at least 2 s: each
    retry of a locked request waits that long, even where the backoff would be shorter."""
    body = {"status": "error", "message": "locked", "category": "LOCKED"}
    answers = iter([httpx.Response(423, json=body), httpx.Response(423, json=body)])
    store = make_store(tmp_path, 1)
    stats, times = send(store, lambda request, guid: next(answers, httpx.Response(204)))
    assert states(store)["g1"] == ("done", 204, 3)
    assert all(b - a >= 2.0 for a, b in pairwise(times)), times
    assert stats.retries == 2


def test_423_past_the_attempts_is_a_retryable_failure(tmp_path: Path) -> None:
    """A portal locked for longer than the attempts allow: the record fails naming the lock,
    and ``retry`` sends it again (its last answer was transient)."""
    store = make_store(tmp_path, 1)
    send(store, lambda request, guid: httpx.Response(423), max_attempts=3)
    assert states(store)["g1"] == ("failed", 423, 3)
    assert "portal locked (423)" in (next(iter(store.report_rows())).reason or "")
    assert store.requeue() == {"not_sent": 0, "transient": 1, "final": 0}


def test_timeouts_and_resets_are_retried(tmp_path: Path) -> None:
    """No answer (timeout, reset) is retried: a PUT of the same fields is idempotent."""
    calls = iter(
        [httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("reset"), httpx.Response(204)]
    )

    def answer(request: httpx.Request, guid: str) -> httpx.Response:
        outcome = next(calls)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    store = make_store(tmp_path, 1)
    send(store, answer)
    assert states(store)["g1"] == ("done", 204, 3)


def test_retries_are_bounded(tmp_path: Path) -> None:
    """After --max-attempts the lead fails with the last reason; the others still go."""
    answers = iter([httpx.Response(503)] * 3 + [httpx.Response(204)] * 2)
    store = make_store(tmp_path)
    send(store, answers, max_attempts=3)
    failed = next(r for r in store.report_rows() if r.guid == "g1")
    assert (failed.state, failed.status, failed.attempts) == ("failed", 503, 3)
    assert failed.reason.startswith("gave up after 3 attempts")
    assert store.bundle_states() == {"done": 2, "failed": 1}


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, {"message": "Field(s) not editable: score."}),
        (404, {"message": "No such lead."}),
        (409, None),
        (415, None),
        (422, None),
    ],
)
def test_client_errors_are_final_with_the_server_message(tmp_path: Path, status: int, body) -> None:
    """400/404/409/415/422 are not retried; the server's message is the reason."""
    store = make_store(tmp_path, 1)
    answer = httpx.Response(status, json=body) if body else httpx.Response(status)
    _, times = send(store, iter([answer]))
    row = next(store.report_rows())
    assert (row.state, row.status, row.attempts) == ("failed", status, 1)
    assert row.reason == (body["message"] if body else f"HTTP {status}")
    assert len(times) == 1


def test_redirect_is_never_followed(tmp_path: Path) -> None:
    """A 3xx could carry the token elsewhere: not followed, the lead fails with a reason."""
    store = make_store(tmp_path, 1)
    _, times = send(store, iter([httpx.Response(302, headers={"Location": "https://evil.test/"})]))
    row = next(store.report_rows())
    assert row.state == "failed" and "redirect" in row.reason
    assert len(times) == 1


def test_html_error_page_and_token_echo_are_cleaned(tmp_path: Path) -> None:
    """An HTML error page becomes a short reason; a server echoing the token is redacted."""
    store = make_store(tmp_path, 2)
    answers = iter(
        [
            httpx.Response(400, text="<html><body>Bad</body></html>"),
            httpx.Response(400, json={"message": f"bad access_token={SECRET}"}),
        ]
    )
    send(store, answers)
    reasons = [r.reason for r in store.report_rows()]
    assert reasons[0] == "HTTP 400 with an HTML page instead of a JSON error"
    assert reasons[1] == "bad access_token=***"


class _EndlessAnswer(httpx.AsyncBaseTransport):
    """Answers 500 with a body that never ends (a misbehaving server or proxy), and counts how
    much of it was asked for and whether the stream was closed."""

    def __init__(self) -> None:
        self.served = 0
        self.closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        transport = self

        class Body(httpx.AsyncByteStream):
            async def __aiter__(self):
                while True:
                    transport.served += 65536
                    yield b"<html>" + b"x" * 65530

            async def aclose(self) -> None:
                transport.closed = True

        return httpx.Response(500, headers={"content-type": "text/html"}, stream=Body())


def test_an_endless_answer_is_read_only_up_to_the_cap(tmp_path: Path) -> None:
    """A 500 whose body never ends: at most MAX_ANSWER (plus one chunk) is read, the connection
    is dropped, and the error cell holds a short message, not the body."""
    store = make_store(tmp_path, 1)
    endless = _EndlessAnswer()

    async def scenario() -> SendStats:
        target = LeadsV1Target(BASE, Token(SECRET))
        options = SendOptions(concurrency=1, max_attempts=2)
        return await Sender(store, target, Pacer(10, 1.0), endless, options).run()

    stats = run_virtual(scenario())
    assert stats.requests == 2
    assert endless.served <= 2 * (MAX_ANSWER + 65536)
    assert endless.closed
    (row,) = store.report_rows()
    assert row.state == "failed" and row.status == 500
    assert row.reason is not None and len(row.reason) < 400
    assert "HTML page" in row.reason


def test_a_stop_whose_grace_runs_out_abandons_the_open_request_cleanly(tmp_path: Path) -> None:
    """A request that stays open past the grace after a stop (Ctrl-C): the run returns
    (no CancelledError); the lead it carried is unconfirmed (its request may have reached
    HubSpot), the lead never sent is deferred."""
    store = make_store(tmp_path, 2)
    opened: list[str] = []

    async def scenario() -> SendStats:
        async def never(request: httpx.Request, guid: str) -> httpx.Response:
            opened.append(guid)
            await asyncio.sleep(3600)
            raise AssertionError("answered")

        with respx.mock(base_url=BASE, assert_all_called=False) as mock:
            mock.put(path__regex=LEAD).mock(side_effect=never)
            async with httpx.AsyncHTTPTransport() as transport:
                target = LeadsV1Target(BASE, Token(SECRET))
                options = SendOptions(concurrency=1, grace_seconds=2.0)
                sender = Sender(store, target, Pacer(10, 1.0), transport, options, timeout=7200)
                asyncio.get_running_loop().call_later(1.0, sender.stop, "signal", "stopped")
                return await sender.run()

    stats = run_virtual(scenario())
    assert len(opened) == 1  # the first lead's request was open when the grace ran out
    assert stats.stop_reason == "signal"
    states = {r.guid: r.state for r in store.report_rows()}
    assert states[opened[0]] == "unconfirmed"
    assert sorted(states.values()) == ["deferred", "unconfirmed"]


def test_an_answer_that_drips_is_cut_at_the_timeout(tmp_path: Path) -> None:
    """A body that comes a byte a second never trips httpx's per-read timeout; the whole
    answer must still come within --timeout, or the attempt is a timeout (and retried)."""
    store = make_store(tmp_path, 1)

    class Drip(httpx.AsyncByteStream):
        async def __aiter__(self):
            for _ in range(60):
                await asyncio.sleep(1.0)
                yield b" "

    async def scenario() -> tuple[SendStats, float]:
        loop = asyncio.get_running_loop()
        with respx.mock(base_url=BASE) as mock:
            mock.put(path__regex=LEAD).mock(
                side_effect=lambda request, guid: httpx.Response(204, stream=Drip())
            )
            async with httpx.AsyncHTTPTransport() as transport:
                target = LeadsV1Target(BASE, Token(SECRET))
                options = SendOptions(concurrency=1, max_attempts=2)
                sender = Sender(store, target, Pacer(10, 1.0), transport, options, timeout=3)
                started = loop.time()
                stats = await sender.run()
                return stats, loop.time() - started

    stats, took = run_virtual(scenario())
    assert stats.requests == 2 and took < 20  # two attempts of 3 s, not two of 60
    (row,) = store.report_rows()
    assert row.state == "failed" and "no whole answer within 3 s" in (row.reason or "")


def test_a_long_retry_after_is_bounded_by_max_retry_time_and_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Retry-After: 86400 (read as 86.4 s) pauses at most --max-retry-time, with a warning."""
    store = make_store(tmp_path, 1)
    answers = iter([httpx.Response(429, headers={"Retry-After": "86400"}), httpx.Response(204)])
    with caplog.at_level("WARNING", logger="bulkleads"):
        _, times = send(store, answers, max_retry_seconds=40.0)
    assert store.bundle_states() == {"done": 1}
    assert 39.0 <= times[1] - times[0] <= 41.0
    assert any("asks to wait 86 s" in r.getMessage() for r in caplog.records)
