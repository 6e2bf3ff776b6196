# Every developer task. `make demo` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)

.PHONY: install demo test lint format bench bench-pacing bench-preflight bench-backup bench-match bench-associations bench-startup clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)  ## create .venv and install bulkleads with the sandbox and test extras

demo: $(STAMP)  ## run a real update job against the local sandbox
	$(BIN)/python scripts/demo.py

test: $(STAMP) lint  ## lint, then the whole suite (3 workers: most tests wait on sandboxes)
	$(BIN)/python -m pytest -q -n 3

lint: $(STAMP)
	$(BIN)/ruff check bulkleads tests bench scripts
	$(BIN)/ruff format --check bulkleads tests bench scripts
	$(BIN)/mypy bulkleads

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

clean:
	rm -rf $(VENV) .bulkleads .pytest_cache .ruff_cache .hypothesis build *.egg-info
