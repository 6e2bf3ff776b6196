"""The command line: flags, exit codes, messages, and the token's safety."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bulkleads.commands.app import app
from bulkleads.token import RedactingFilter, Token
from tests.conftest import ROOT, run_cli

SECRET = "pat-na1-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
runner = CliRunner()


def invoke(tmp_path: Path, *args: str, token: str | None = SECRET):
    env = {"HUBSPOT_ACCESS_TOKEN": token or "", "BULKLEADS_BASE_URL": ""}
    return runner.invoke(app, [*args, "--state-dir", str(tmp_path / "state")], env=env)


def leads(tmp_path: Path, text: str = "guid,city\nabc,Boston\n") -> str:
    path = tmp_path / "in.csv"
    path.write_text(text)
    return str(path)


def test_missing_token_says_how_to_provide_it(tmp_path: Path) -> None:
    """No token: exit 2 and a message naming the variable and --token-file."""
    result = invoke(tmp_path, "update", leads(tmp_path), token=None)
    assert result.exit_code == 2
    assert "HUBSPOT_ACCESS_TOKEN" in result.output and "--token-file" in result.output


def test_plain_http_only_to_loopback(tmp_path: Path) -> None:
    """http:// to another host is refused before anything is read or sent."""
    result = invoke(tmp_path, "update", leads(tmp_path), "--base-url", "http://example.com")
    assert result.exit_code == 2 and "refusing plain http" in result.output


def test_token_file_is_read_and_never_printed(tmp_path: Path) -> None:
    """--token-file works; a dry run's example request shows *** instead of the token."""
    token_file = tmp_path / "token"
    token_file.write_text(SECRET + "\n")
    result = invoke(
        tmp_path,
        "update",
        leads(tmp_path),
        "--token-file",
        str(token_file),
        "--dry-run",
        "--no-backup",  # reads nothing: this test has no server to read from
    )
    assert result.exit_code == 0, result.output
    assert "access_token=***" in result.output and SECRET not in result.output


def test_not_editable_column_is_exit_2_naming_it(tmp_path: Path) -> None:
    """A column HubSpot refuses stops the run before anything is sent."""
    result = invoke(tmp_path, "update", leads(tmp_path, "guid,portalId\nabc,1\n"), "--dry-run")
    assert result.exit_code == 2 and "portalId" in result.output


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--map", "nonsense", "--map takes"),
        ("--on-conflict", "merge", "'merge' is not one of"),
        ("--format", "xls", "'xls' is not one of"),
        ("--delimiter", "ab", "--delimiter takes"),
        ("--timezone", "Mars/Olympus", "unknown --timezone"),
        ("--encoding", "nope", "unknown encoding"),
    ],
)
def test_bad_flags_are_exit_2_with_a_hint(
    tmp_path: Path, flag: str, value: str, message: str
) -> None:
    """Flags that do not fit fail with a message saying what fits."""
    result = invoke(tmp_path, "update", leads(tmp_path), flag, value, "--dry-run")
    assert result.exit_code == 2 and message in result.output


def test_unreadable_input_is_exit_2_without_traceback(tmp_path: Path) -> None:
    """A missing file is one line, no traceback."""
    result = invoke(tmp_path, "update", str(tmp_path / "missing.csv"), "--dry-run")
    assert result.exit_code == 2
    assert "cannot open" in result.output and "Traceback" not in result.output


def test_unknown_job_says_how_to_list_jobs(tmp_path: Path) -> None:
    """report/retry of a job that does not exist point to `bulkleads jobs`."""
    result = invoke(tmp_path, "report", "deadbeef")
    assert result.exit_code == 2 and "bulkleads jobs" in result.output


def test_token_object_never_formats_its_value() -> None:
    """str, repr and f-strings of a Token show ***; redact() scrubs text."""
    token = Token(SECRET)
    assert SECRET not in f"{token} {token!r} {token!s}"
    assert token.redact(f"url?access_token={SECRET}&x=1") == "url?access_token=***&x=1"
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(token)


def test_log_filter_redacts_messages_and_tracebacks() -> None:
    """Whatever logs the token (message, args or exception), the handler never sees it."""
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "sent %s", (SECRET,), None)
    try:
        raise RuntimeError(f"failed at https://api/x?access_token={SECRET}")
    except RuntimeError as exc:
        record.exc_info = (type(exc), exc, exc.__traceback__)
    RedactingFilter(Token(SECRET)).filter(record)
    text = logging.Formatter().format(record)
    assert SECRET not in text and "***" in text


def test_the_docs_document_every_command_flag_and_exit_code() -> None:
    """Each command is in the README, each update flag in --help in the reference page, and
    every exit code in the README's table; the README stays a page a user reads daily (at
    most 300 lines) and every page it links to exists."""
    readme = (ROOT / "README.md").read_text()
    reference = (ROOT / "docs" / "reference.md").read_text()
    for command in ("update", "retry", "undo", "report", "jobs", "sandbox"):
        assert f"bulkleads {command}" in readme, command
        assert runner.invoke(app, [command, "--help"]).exit_code == 0
    help_text = runner.invoke(app, ["update", "--help"], env={"COLUMNS": "200"}).output
    for flag in set(re.findall(r"--[a-z][a-z-]+", help_text)) - {"--help"}:
        assert flag in reference, flag
    for code in (0, 1, 2, 3, 4, 130):
        assert f"\n| {code} |" in readme, code
    assert len(readme.splitlines()) <= 300
    for page in re.findall(r"\]\((docs/[\w-]+\.md)", readme):
        assert (ROOT / page).exists(), page


def test_crm_v3_refuses_the_token_in_the_query(tmp_path: Path) -> None:
    """CRM v3 takes bearer tokens only: asking for ?access_token= is a usage error."""
    result = invoke(
        tmp_path, "update", leads(tmp_path, "id,city\n1,x\n"), "--api", "crm-v3", "--auth", "query"
    )
    assert result.exit_code == 2 and "Authorization header" in result.output


@pytest.mark.parametrize(
    "flags", [("--object", "deals"), ("--api-version", "v3"), ("--match", "email")]
)
def test_a_crm_flag_with_leads_v1_named_is_refused_not_ignored(
    tmp_path: Path, flags: tuple[str, ...]
) -> None:
    """A CRM flag beside an explicit --api leads-v1 is exit 2, never silently dropped."""
    leads = tmp_path / "l.csv"
    leads.write_text("guid,city\ng1x,Berlin\n")
    args = ("update", str(leads), "--dry-run", "--api", "leads-v1", *flags)
    result = run_cli(*args, cwd=tmp_path, token=None)
    assert result.code == 2
    assert f"{flags[0]} applies to the crm-v3 API" in result.stderr
    assert not (tmp_path / "l.dry-run.report.csv").exists()


@pytest.mark.parametrize(
    ("header", "flags", "api"),
    [
        ("id,city", (), "crm-v3"),  # record ids: the CRM API
        ("guid,city", (), "leads-v1"),
        ("guid,city", ("--object", "contacts", "--guid-column", "guid"), "crm-v3"),
        ("email,city", ("--match", "email"), "crm-v3"),
        ("Record,city", ("--map", "Record=id"), "crm-v3"),
    ],
)
def test_without_api_the_flags_and_the_file_choose_it(
    tmp_path: Path, header: str, flags: tuple[str, ...], api: str
) -> None:
    """--object, --match, --create or an id column mean the CRM API; a guid column Leads
    v1: the plan's example request goes to that API's path."""
    records = tmp_path / "records.csv"
    key = "ann@example.com" if header.startswith("email") else "101"
    records.write_text(f"{header}\n{key},Berlin\n")
    result = run_cli("update", str(records), "--dry-run", *flags, cwd=tmp_path, token=None)
    assert result.code in (0, 1), result.stderr
    path = "/crm/objects/2026-09/contacts/batch/" if api == "crm-v3" else "/leads/v1/lead/"
    assert path in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("header", "words"),
    [
        ("email,city", "--api crm-v3 --object contacts --match email"),
        ("domain,name", "--api crm-v3 --object companies"),
        ("Name,city", '--map "NAME=guid"'),  # no hint of an API: Leads v1's words, as before
    ],
)
def test_a_file_that_names_no_api_gets_the_command_that_would_work(
    tmp_path: Path, header: str, words: str
) -> None:
    """A contacts export with an email column and no flag is exit 2 with the working command
    (it said: no guid column)."""
    records = tmp_path / "export.csv"
    records.write_text(f"{header}\na@example.com,Berlin\n")
    result = run_cli("update", str(records), "--dry-run", cwd=tmp_path, token=None)
    assert result.code == 2
    assert words in result.stderr, result.stderr


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_shell_completion_scripts_are_typers_own(tmp_path: Path, shell: str) -> None:
    """`bulkleads --show-completion SHELL` prints the script to source for bash, zsh and fish."""
    shown = run_cli("--show-completion", shell, cwd=tmp_path, token=None)
    assert shown.code == 0, shown.stderr
    assert "_BULKLEADS_COMPLETE" in shown.stdout


def test_completion_completes_commands_and_flags(tmp_path: Path) -> None:
    """The completion the scripts call: a command from its start, a flag of update."""
    env = {"_BULKLEADS_COMPLETE": "complete_bash", "COMP_CWORD": "1"}
    command = run_cli(cwd=tmp_path, token=None, env={**env, "COMP_WORDS": "bulkleads upd"})
    assert command.stdout.split() == ["update"]
    env = {**env, "COMP_CWORD": "3", "COMP_WORDS": "bulkleads update x.csv --dry"}
    flag = run_cli(cwd=tmp_path, token=None, env=env)
    assert flag.stdout.split() == ["--dry-run"]
