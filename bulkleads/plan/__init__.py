"""Stage 2, plan: records checked against the field rules and merged into one bundle per
record key (``planner.plan``), with the links their ``associate:`` columns ask for."""
