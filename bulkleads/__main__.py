"""``python -m bulkleads`` runs the command line."""

from bulkleads.commands.app import main

main()
