"""One module per command: its own flags, then a short body that turns them into config values
and hands them to the library (:mod:`bulkleads.run`, :mod:`bulkleads.pipeline.undo`, ...)."""
