"""``python -m bulkleads`` runs the command line."""

from .cli import main

main()
