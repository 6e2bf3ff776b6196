"""The command line: the Typer app (``app``), flags several commands share (``options``), and
one error, one line (``errors``). Each command lives in :mod:`bulkleads.commands`."""

from bulkleads.cli.app import app, main

__all__ = ["app", "main"]
