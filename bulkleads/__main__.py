"""``python -m bulkleads`` runs the command line."""

from bulkleads.cli import main

main()
