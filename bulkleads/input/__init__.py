"""Stage 1, input: a file (CSV, TSV, JSON Lines, gzip, stdin, ``.xlsx``) read as a stream of
records, each with its row and line. Knows nothing of HubSpot or jobs."""
