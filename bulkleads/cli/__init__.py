"""What every command shares: flag groups declared once (``options``), profiles
(``profiles``), and one error, one line (``errors``). The Typer app and the commands live in
:mod:`bulkleads.commands`."""
