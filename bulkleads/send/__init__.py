"""Stage 3, send: a job's phases (read, write, create, verify, links) through one async pool
paced to the portal's limit (``runner.send_phases``), each answer recorded in the job store
the moment it arrives; retries, pacing, the portal's memory and Ctrl-C."""
