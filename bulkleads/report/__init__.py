"""Stage 4, output: the report of every input row, the summary file, the HTML page of a job's
pace, and what the console says (plan, progress, done line)."""
