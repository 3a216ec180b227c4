# Entry points: `make demo` (lab + main job) and `make test` (lint + unit + lab tests).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LAB_HOSTS ?= 2
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: venv lint unit test lab-test molecule lab lab-down lab-status demo bench bench-grammar bench-lab bench-site captures clean

venv: $(VENV)/.installed

# carrier-lint is installed editable: the command runs this checkout's module_utils (the role's own checks).
$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet -e .
	touch $@

# carrier-lint twice on the example inventory: without the vault password (vault content skipped) and
# with its DEMO password (every vault value decrypted and checked).
lint: venv
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint --profile production
	$(BIN)/python -m compileall -q module_utils filter_plugins library action_plugins callback_plugins lab tests benchmarks vicireg_lint
	$(BIN)/carrier-lint inventories/
	$(BIN)/carrier-lint --vault-password-file inventories/example/DEMO-vault-password.txt inventories/example

unit: venv
	$(BIN)/pytest -q tests/unit

test: lint unit lab-test molecule

# Against the real lab: the grammar vs Asterisk 16, site.yml scenarios, an inbound call.
lab-test: venv lab
	$(BIN)/pytest -q tests/lab

# Molecule's create/destroy are the lab's own up/down. Destroy again whatever happened: a failing
# testinfra verify can make Molecule skip its destroy step.
molecule: venv
	$(BIN)/molecule test -s default; rc=$$?; $(PYTHON) lab/labctl.py down >/dev/null; exit $$rc

lab:
	$(PYTHON) lab/labctl.py up --hosts $(LAB_HOSTS)

lab-down:
	$(PYTHON) lab/labctl.py down

lab-status:
	$(PYTHON) lab/labctl.py status

demo: venv lab
	$(BIN)/ansible-playbook site.yml
	@echo "== an inbound call through the carrier to each dialer's DID"
	$(PYTHON) lab/call.py --dialer lab-a16-01 --account d1sip --hold 1
	$(PYTHON) lab/call.py --dialer lab-a22-02 --account d2pjsip --hold 1

# site.yml on 1, 5, 10 and 20 lab dialers (10 carriers each), next to the restart-and-wait procedure.
# Leaves the lab running with 20 dialers.
bench: venv
	$(PYTHON) lab/labctl.py up --hosts 20
	$(BIN)/python benchmarks/bench_fleet.py

bench-grammar: venv
	$(BIN)/python benchmarks/bench_grammar.py

bench-lab:
	$(PYTHON) benchmarks/bench_lab.py

# site.yml on one lab dialer, three carriers, next to the restart-and-wait procedure it replaces.
bench-site: venv lab
	$(BIN)/python benchmarks/bench_site.py

# Re-capture real Asterisk status output for the parser tests (lab up).
captures: lab
	$(PYTHON) tests/lab/capture_status.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis reports
