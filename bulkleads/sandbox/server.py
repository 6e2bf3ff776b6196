"""Serve the sandbox with uvicorn on a real socket, and say where on stdout's first line."""

from __future__ import annotations

import json
import logging
import socket
import sys
from typing import Final

import uvicorn

from bulkleads.sandbox.app import DropConnection, Sandbox, SandboxConfig
from bulkleads.sandbox.control import control_routes
from bulkleads.sandbox.crm import CrmObjects, load_objects
from bulkleads.sandbox.import_routes import import_routes
from bulkleads.sandbox.leads import load_leads
from bulkleads.sandbox.link_routes import link_routes
from bulkleads.sandbox.properties import load_definitions

__all__ = ["SandboxConfig", "serve"]


class _HideDrops(logging.Filter):
    """A dropped connection is a requested fault, not an error worth a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], DropConnection))


# The route tables beside HubSpot's paths: its association endpoints, the sandbox's own.
ROUTES: Final = (link_routes, import_routes, control_routes)


def build(config: SandboxConfig) -> Sandbox:
    """The sandbox with its leads: the saved state if there is one, else the seed."""
    leads: dict[str, dict[str, object]] = {}
    if config.state is not None and config.state.exists():
        leads = load_leads(config.state)
    elif config.seed is not None:
        leads = load_leads(config.seed)
    crm = CrmObjects(
        {name: load_objects(path) for name, path in config.crm_seeds.items()},
        {name: load_definitions(name, path) for name, path in config.crm_properties.items()},
        [json.loads(path.read_text(encoding="utf-8")) for path in config.crm_schemas],
        {
            name: json.loads(path.read_text(encoding="utf-8"))
            for name, path in config.crm_pipelines.items()
        },
    )
    return Sandbox(config, leads, crm=crm, routes=ROUTES)


def holdings(sandbox: Sandbox) -> str:
    """What the sandbox holds, each kind of record counted: ``2400 contacts, 40 companies``
    (``0 leads`` when it holds nothing)."""
    counts = [(len(sandbox.leads), "leads")] if sandbox.leads else []
    names = {str(s["objectTypeId"]): str(s["name"]) for s in sandbox.crm.schemas}
    counts += [
        (len(records), names.get(kind, kind))
        for kind, records in sandbox.crm.objects.items()
        if records
    ]
    return ", ".join(f"{n} {name}" for n, name in counts) or "0 leads"


def serve(config: SandboxConfig) -> None:
    """Run until Ctrl-C or SIGTERM; the state file is saved on the way out."""
    sandbox = build(config)
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((config.host, config.port))
    sock.listen(128)  # connections queue from now on, so the printed URL is usable at once
    port = sock.getsockname()[1]
    host = f"[{config.host}]" if family == socket.AF_INET6 else config.host
    print(f"http://{host}:{port}", flush=True)
    print(
        f"sandbox: {holdings(sandbox)}, token {config.token!r}, "
        f"limit {config.limit} per {config.window}s, daily {config.daily}; Ctrl-C stops it",
        file=sys.stderr,
        flush=True,
    )
    logging.getLogger("uvicorn.error").addFilter(_HideDrops())
    server = uvicorn.Server(
        uvicorn.Config(
            sandbox.app,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
    )
    server.run(sockets=[sock])
