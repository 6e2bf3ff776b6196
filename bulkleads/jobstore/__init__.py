"""The job store: one SQLite file per job holding the plan and every outcome, the single
source of truth that planning writes, sending updates and the report reads; where job files
live (``folder``) and the lock a process holds on one."""
