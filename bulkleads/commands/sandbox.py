"""``bulkleads sandbox``: a local HubSpot to rehearse against."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from bulkleads.cli.errors import fail, handles_errors
from bulkleads.cli.options import flag_groups, object_files
from bulkleads.errors import EXIT_ABORTED, UsageError
from bulkleads.sandbox import SANDBOX_TOKEN


@dataclass(frozen=True)
class SandboxFlags:
    """The sandbox's flags: where it listens, what it holds, its limits and its faults."""

    host: Annotated[
        str,
        typer.Option(
            help="Address to listen on.",
            metavar="TEXT",
        ),
    ] = "127.0.0.1"
    port: Annotated[
        int,
        typer.Option(
            help="Port; 0 picks a free one.",
            min=0,
            max=65535,
            metavar="N",
        ),
    ] = 0
    seed: Annotated[
        Path | None,
        typer.Option(
            help="Leads to start with: JSON, JSONL or CSV with a guid column.",
            metavar="PATH",
        ),
    ] = None
    state: Annotated[
        Path | None,
        typer.Option(
            help="Load at start if present, save on exit.",
            metavar="PATH",
        ),
    ] = None
    token: Annotated[
        str,
        typer.Option(
            help="The token the sandbox accepts (a sandbox credential, not a real one).",
            metavar="TEXT",
        ),
    ] = SANDBOX_TOKEN
    limit: Annotated[
        int,
        typer.Option(
            help="Requests allowed per --window.",
            min=1,
            metavar="N",
        ),
    ] = 10
    window: Annotated[
        float,
        typer.Option(
            help="Rolling window in seconds.",
            min=0.001,
            metavar="SECONDS",
        ),
    ] = 1.0
    daily: Annotated[
        int,
        typer.Option(
            help="Requests allowed per day.",
            min=0,
            metavar="N",
        ),
    ] = 40_000
    day_seconds: Annotated[
        float,
        typer.Option(
            help="Length of the sandbox's day: the daily limit starts again every SECONDS "
            "(default a real day, from midnight UTC), so a test can see a reset.",
            min=0.1,
            metavar="SECONDS",
        ),
    ] = 86_400.0
    retry_after: Annotated[
        bool,
        typer.Option(
            "--retry-after",
            help="Send Retry-After on 429.",
            metavar="",
        ),
    ] = False
    fail_rate: Annotated[
        float,
        typer.Option(
            help="Share of requests answered 5xx.",
            min=0,
            max=1,
            metavar="SHARE",
        ),
    ] = 0.0
    drop_rate: Annotated[
        float,
        typer.Option(
            help="Share applied, then the connection dropped.",
            min=0,
            max=1,
            metavar="SHARE",
        ),
    ] = 0.0
    noop_rate: Annotated[
        float,
        typer.Option(
            help="Share of writes answered as applied but not applied (HubSpot's silent no-op; "
            "--verify catches it).",
            min=0,
            max=1,
            metavar="SHARE",
        ),
    ] = 0.0
    garble_rate: Annotated[
        float,
        typer.Option(
            help="Share of CRM batch writes applied but answered 200 with a body cut short "
            "(a proxy's fault; the client must not count them as updated).",
            min=0,
            max=1,
            metavar="SHARE",
        ),
    ] = 0.0
    locked_rate: Annotated[
        float,
        typer.Option(
            help="Share of requests answered 423 Locked (HubSpot digesting a large sync; "
            "nothing applied, send again after 2 s).",
            min=0,
            max=1,
            metavar="SHARE",
        ),
    ] = 0.0
    latency_ms: Annotated[
        float,
        typer.Option(
            help="Delay before each answer.",
            min=0,
            metavar="MS",
        ),
    ] = 0.0
    crm_seed: Annotated[
        list[str] | None,
        typer.Option(
            "--crm-seed",
            help="CRM v3 records to start with, as OBJECT=FILE (e.g. "
            "contacts=contacts.json; an id column plus properties). Repeatable.",
            metavar="OBJECT=FILE",
        ),
    ] = None
    crm_properties: Annotated[
        list[str] | None,
        typer.Option(
            "--crm-properties",
            help="CRM v3 property definitions over the defaults, as OBJECT=FILE (a JSON list "
            "in HubSpot's shape: name, type, options, calculated, modificationMetadata). "
            "Repeatable.",
            metavar="OBJECT=FILE",
        ),
    ] = None
    crm_pipelines: Annotated[
        list[str] | None,
        typer.Option(
            "--crm-pipelines",
            help="Deals' or tickets' pipelines, as OBJECT=FILE (a JSON list in HubSpot's "
            "shape: id, label, stages with id and label); default: HubSpot's default "
            "pipeline of each. Repeatable.",
            metavar="OBJECT=FILE",
        ),
    ] = None
    crm_schema: Annotated[
        list[Path] | None,
        typer.Option(
            "--crm-schema",
            help="A custom object, as HubSpot's schema JSON (name, objectTypeId, "
            "fullyQualifiedName, labels, requiredProperties, properties); its records by "
            "--crm-seed NAME=FILE. Repeatable.",
            metavar="FILE",
        ),
    ] = None
    unlimited: Annotated[
        bool,
        typer.Option(
            "--unlimited",
            help="No rate or daily limit (benchmarks).",
            metavar="",
        ),
    ] = False


@handles_errors
@flag_groups
def sandbox_command(*, flags: SandboxFlags) -> None:
    """Run a local server that behaves like HubSpot (Leads v1 and CRM v3), for rehearsals
    and tests. Its first line on stdout is its URL.

    While it runs, POST /__sandbox/config takes a JSON object with any of: daily (requests a
    day, null for no cap), reset_daily (true), fail_rate, drop_rate, noop_rate, garble_rate,
    locked_rate (0 to 1), fail_definitions (false: faults spare the property read),
    definitions_forbidden (true: that read answers 403), refuse_values (property to values
    writes refuse), remove_options (object to property to option values removed), latency_ms
    (milliseconds) and retry_after (true or false). GET /__sandbox/stats and GET
    /__sandbox/state show what it received and holds.

    Example: bulkleads sandbox --seed sample_data/seed.json --limit 100 --window 10
    """
    try:
        from bulkleads.sandbox.app import SandboxConfig
        from bulkleads.sandbox.server import serve
    except ImportError:  # pragma: no cover - depends on how bulkleads was installed
        fail(UsageError("the sandbox needs its extra: pip install 'bulkleads[sandbox]'"))
    config = SandboxConfig(
        host=flags.host,
        port=flags.port,
        seed=flags.seed,
        state=flags.state,
        token=flags.token,
        limit=None if flags.unlimited else flags.limit,
        window=flags.window,
        daily=None if flags.unlimited else flags.daily,
        day=flags.day_seconds,
        retry_after=flags.retry_after,
        fail_rate=flags.fail_rate,
        drop_rate=flags.drop_rate,
        noop_rate=flags.noop_rate,
        garble_rate=flags.garble_rate,
        locked_rate=flags.locked_rate,
        latency=flags.latency_ms / 1000,
        crm_seeds=object_files(flags.crm_seed, "--crm-seed"),
        crm_properties=object_files(flags.crm_properties, "--crm-properties"),
        crm_schemas=tuple(flags.crm_schema or ()),
        crm_pipelines=object_files(flags.crm_pipelines, "--crm-pipelines"),
    )
    try:
        serve(config)
    except KeyboardInterrupt:  # uvicorn stopped and raised the Ctrl-C again: a stop, not a fault
        raise typer.Exit(EXIT_ABORTED) from None
