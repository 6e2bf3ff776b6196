"""The command line: the Typer app and ``main`` (``app``), then one module per command: its
own flags, then a short body that turns them into settings and hands them to
:mod:`bulkleads.pipeline` (update, retry, undo, report) or the job store (jobs)."""
