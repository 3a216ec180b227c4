# Entry points: `make demo` (lab + main job) and `make test` (lint + unit + lab tests).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LAB_HOSTS ?= 2
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: venv lint unit test lab lab-down lab-status demo bench clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

lint: venv
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint --profile production
	$(BIN)/python -m compileall -q module_utils filter_plugins library bin lab tests benchmarks

unit: venv
	$(BIN)/pytest -q tests/unit

test: lint unit

lab:
	$(PYTHON) lab/labctl.py up --hosts $(LAB_HOSTS)

lab-down:
	$(PYTHON) lab/labctl.py down

lab-status:
	$(PYTHON) lab/labctl.py status

demo: venv lab
	$(BIN)/ansible-playbook site.yml

bench: venv
	$(BIN)/python benchmarks/bench_grammar.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis reports
