# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATADIR ?= data/regtest

.PHONY: install run test bench demo clean

$(STAMP): pyproject.toml core/_hashes.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/python -m node.devrun --datadir $(DATADIR)

test: install
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=10

bench: install
	$(BIN)/python bench/run_all.py --results bench/results.json --write BENCHMARKS.md

# A regtest node in a temp dir on free ports: register d/example, resolve it, stop (about 30 s).
demo: install
	$(BIN)/python -m node.demo

clean:
	rm -rf $(VENV) data build *.egg-info
