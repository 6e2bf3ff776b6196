"""A job's life, wiring the stages: settings from the flags (frozen values), update, retry,
undo and the dry run."""
