# Every developer task. `make demo` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)

.PHONY: install demo test lint format mutation bench bench-pacing bench-preflight bench-backup bench-match bench-associations bench-startup clean

# An editable install compiles nothing; where PYTHONDONTWRITEBYTECODE is set (as on this
# project's machines) every process would compile bulkleads again, ~0.15 s of CPU each.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	$(BIN)/python -m compileall -q bulkleads
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)  ## create .venv and install bulkleads with the sandbox and test extras

demo: $(STAMP)  ## run a real update job against the local sandbox
	$(BIN)/python scripts/demo.py

# Six workers on 2 cores: most end-to-end tests wait on a sandbox's pace, not on the CPU (each
# worker forks its CLI runs from one process that has imported it: tests/forked.py); idle
# workers take tests queued for busy ones (worksteal), so no slow file ends the run alone.
test: $(STAMP) lint  ## lint, then the whole suite
	$(BIN)/python -m pytest -q -n 6 --dist worksteal

lint: $(STAMP)
	$(BIN)/ruff check bulkleads tests bench scripts
	$(BIN)/ruff format --check bulkleads tests bench scripts
	$(BIN)/mypy bulkleads
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format bulkleads tests bench scripts
	$(BIN)/ruff check --fix bulkleads tests bench scripts

bench: bench-pacing bench-preflight bench-backup bench-match bench-associations bench-startup  ## the measured goals in bench/RESULTS.md

bench-pacing: $(STAMP)
	$(BIN)/python bench/pacing.py
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,bench]'
	$(BIN)/python bench/sequence.py

bench-preflight: $(STAMP)
	$(BIN)/python bench/preflight.py

bench-backup: $(STAMP)
	$(BIN)/python bench/backup.py

bench-match: $(STAMP)
	$(BIN)/python bench/match.py

bench-associations: $(STAMP)
	$(BIN)/python bench/associations.py

bench-startup: $(STAMP)
	$(BIN)/python bench/startup.py

# Mutation testing of the core (bench/mutation.py): not part of `make test`, many minutes.
mutation: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,bench]'
	rm -rf mutants
	$(BIN)/python bench/mutation.py

clean:
	rm -rf $(VENV) .bulkleads mutants .pytest_cache .ruff_cache .hypothesis build *.egg-info
