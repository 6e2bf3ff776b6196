"""--notify: every run's end reaches a monitor, on every exit code, never with the token."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import TOKEN, run_cli, write_seed

GUIDS = [f"{i:032x}" for i in range(1, 6)]


class _Monitor(BaseHTTPRequestHandler):
    received: list[dict[str, object]]

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(
            {"path": self.path, "type": self.headers["Content-Type"], "body": body.decode()}
        )
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


@pytest.fixture
def monitor() -> Iterator[tuple[str, list[dict[str, object]]]]:
    """A local endpoint that keeps what it is posted."""
    handler = type("Monitor", (_Monitor,), {"received": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/secret-path", handler.received
    server.shutdown()
    server.server_close()


def _fragments(token: str) -> set[str]:
    return {token[i : i + 8] for i in range(len(token) - 7)}


def test_every_exit_code_posts_one_summary_without_the_token(
    tmp_path: Path, sandbox, monitor
) -> None:
    """Exit 0, 1, 2 and 3 each post one summary with its exit code and a text line; no
    8-character piece of the token is in any of them."""
    url, received = monitor
    box = sandbox("--limit", "100", seed=write_seed(tmp_path / "s.json", GUIDS))
    good = tmp_path / "good.csv"
    good.write_text("guid,city\n" + "".join(f"{g},A\n" for g in GUIDS[:2]))
    bad = tmp_path / "bad.csv"
    bad.write_text(f"guid,closedAt\n{GUIDS[2]},next Tuesday\n{GUIDS[3]},2024-01-01\n")
    later = tmp_path / "later.csv"
    later.write_text("guid,city\n" + "".join(f"{g},B\n" for g in GUIDS))
    flags = ("--base-url", box.url, "--notify", url)
    assert run_cli("update", str(good), *flags, cwd=tmp_path).code == 0
    assert run_cli("update", str(bad), *flags, cwd=tmp_path).code == 1
    assert run_cli("update", str(good), *flags, "--delimiter", "ab", cwd=tmp_path).code == 2
    box.configure(daily=0)
    assert run_cli("update", str(later), *flags, cwd=tmp_path).code == 3
    assert len(received) == 4
    bodies = [json.loads(str(r["body"])) for r in received]
    assert [b["exit_code"] for b in bodies] == [0, 1, 2, 3]
    assert all(r["path"] == "/hooks/secret-path" for r in received)
    assert all(r["type"] == "application/json" for r in received)
    assert bodies[0]["text"].endswith("done (exit 0): 2 updated")
    assert "--delimiter" in bodies[2]["text"] and bodies[2]["error"]
    for r in received:
        assert not [f for f in _fragments(TOKEN) if f in str(r["body"])]


def test_an_unreachable_monitor_changes_no_exit_code(tmp_path: Path, sandbox) -> None:
    """A URL no one listens on: a warning that names its host only (a webhook's path is its
    secret), and the run's own exit code."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    box = sandbox("--limit", "100", seed=write_seed(tmp_path / "s.json", GUIDS))
    good = tmp_path / "good.csv"
    good.write_text(f"guid,city\n{GUIDS[0]},A\n")
    url = f"http://127.0.0.1:{port}/hooks/secret-path"
    ran = run_cli("update", str(good), "--base-url", box.url, "--notify", url, cwd=tmp_path)
    assert ran.code == 0, ran.stderr
    assert "--notify: the summary did not reach 127.0.0.1" in ran.stderr
    assert "secret-path" not in ran.stderr


def test_a_profile_notifies_its_runs_and_retries(tmp_path: Path, sandbox, monitor) -> None:
    """`notify` in a profile posts each run's summary, a retry's too (the job keeps its
    profile)."""
    url, received = monitor
    box = sandbox("--limit", "100", seed=write_seed(tmp_path / "s.json", GUIDS))
    config = tmp_path / "config.toml"
    config.write_text(f'[profile.nightly]\nbase_url = "{box.url}"\nnotify = "{url}"\n')
    good = tmp_path / "good.csv"
    good.write_text(f"guid,city\n{GUIDS[0]},A\n")
    env = {"BULKLEADS_CONFIG": str(config)}
    assert run_cli("update", str(good), "--profile", "nightly", cwd=tmp_path, env=env).code == 0
    assert run_cli("retry", str(good), cwd=tmp_path, env=env).code == 0
    assert [json.loads(str(r["body"]))["exit_code"] for r in received] == [0, 0]
