# healthbutler.recovery — everything a fresh machine needs goes through these targets.
SHELL := /bin/bash
VENV ?= $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(CURDIR)/.tools/node_modules/.bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_HOME := $(CURDIR)/.ansible
PYTEST ?= $(VENV)/bin/pytest
SANDBOX_STATE ?= present
# Integration tests run in this many pytest-xdist workers, each with a sandbox of its own.
INTEGRATION_WORKERS ?= 2

.PHONY: bench help bootstrap sandbox sandbox-down sandbox-status staging staging-down staging-status test lint sanity unit integration fleet-test molecule clean

help:
	@echo "make sandbox   bring up the local sandbox staging (PostgreSQL, Redis, PM2 app)"
	@echo "make staging   bring up the local staging fleet (5 hosts: namespaces + sshd each; make staging-down)"
	@echo "make test      install what is missing, then lint, sanity, unit, integration, fleet-test, molecule"
	@echo "make lint      ansible-lint (production profile), ruff, ansible-doc of every plugin, changelog lint"
	@echo "make sanity    ansible-test sanity (offline pip recipe, scripts/sanity.sh)"
	@echo "make bench     every benchmark (bench/), tables with ratios against the bare commands"
	@echo "make clean     stop the sandbox and remove generated files"

bootstrap:
	@bash scripts/bootstrap.sh

sandbox: bootstrap
	ansible-playbook playbooks/sandbox.yml -e sandbox_state=$(SANDBOX_STATE)

sandbox-down:
	ansible-playbook playbooks/sandbox.yml -e sandbox_state=absent

sandbox-status:
	ansible-playbook playbooks/sandbox.yml -e sandbox_state=status

# The local staging fleet (docs/staging.md): five SSH hosts in their own namespaces.
# Its state (per-host roots, sshd configs, keys, the inventory) lives outside the checkout: each host's /tmp is
# private, so a checkout under /tmp (as CI may clone it) would hide it from the hosts' own sshd. .staging links to it.
STAGING_DIR ?= /var/lib/healthbutler-staging/$(shell printf %s '$(CURDIR)' | sha1sum | cut -c1-12)
export HB_STAGING_DIR := $(STAGING_DIR)
STAGING_PLAY = ansible-playbook -i $(STAGING_DIR)/inventory.yml playbooks/staging.yml

staging: bootstrap
	$(STAGING_PLAY) -e staging_state=present
	@[ "$(STAGING_DIR)" = "$(CURDIR)/.staging" ] || ln -sfn $(STAGING_DIR) .staging

staging-status:
	$(STAGING_PLAY) -e staging_state=status

staging-down:
	$(STAGING_PLAY) -e staging_state=absent
	@[ ! -L .staging ] || rm -f .staging

# sanity runs serially right after lint: beside lint or unit on a 2-core box it saved nothing (lint + sanity
# 232 s one after the other, 252 s with -j2 under the same load, 2026-12-02; unit takes 12 s).
test: bootstrap
	$(MAKE) --no-print-directory lint sanity unit integration fleet-test molecule

# molecule installs a built copy of the collection into $(ANSIBLE_HOME)/collections, where ansible-lint
# looks first; built without the sandbox (galaxy.yml build_ignore) it would hide roles/sandbox.
lint:
	rm -rf $(ANSIBLE_HOME)/collections/ansible_collections/healthbutler
	ruff check .
	ansible-lint --nocolor
	bash scripts/check-docs.sh
	python scripts/check-become-paths.py
	antsibull-changelog lint

# ansible-test sanity from a copy under .cache/ansible-test/tree/ansible_collections/healthbutler/recovery.
sanity:
	bash scripts/sanity.sh

unit:
	$(PYTEST) -q tests/unit

# Integration tests run from a copy of the checkout under a mode-0700 directory (as CI may clone it), so that
# a task run as postgres that reads the checkout fails here as it would there.
integration:
	bash scripts/private-checkout.sh $(PYTEST) -q -n $(INTEGRATION_WORKERS) --dist loadfile --durations=15 tests/integration

# The staging fleet's tests bring the fleet up and down themselves (tests/fleet/conftest.py).
fleet-test:
	$(PYTEST) -q --durations=5 tests/fleet

molecule:
	molecule test --all

clean:
	-[ -e .sandbox ] && ansible-playbook playbooks/sandbox.yml -e sandbox_state=absent
	-[ -e $(STAGING_DIR)/inventory.yml ] && $(STAGING_PLAY) -e staging_state=absent
	rm -rf .ansible .pytest_cache .ruff_cache tests/output .cache/ansible-test/tree
	find . -name __pycache__ -not -path './.venv/*' -prune -exec rm -rf {} +

# Every benchmark on the sandbox (and the fleet's when `make staging` is up), each a table with ratios against
# the bare commands; ends with the load average. BENCH_SIZE_MB is the size of recover_db's generated data
# (realistic rows, not pgbench's; `make bench BENCH_SIZE_MB=200` for a quick run).
BENCH_SIZE_MB ?= 2048
BENCH_RUNS ?= 3
bench: sandbox
	$(VENV)/bin/python bench/diagnose.py --runs $(BENCH_RUNS)
	$(VENV)/bin/python bench/recover_db.py --size-mb $(BENCH_SIZE_MB) --runs $(BENCH_RUNS)
	$(VENV)/bin/python bench/recover_rows.py
	$(VENV)/bin/python bench/verify.py --repeat $(BENCH_RUNS)
	@if [ -e $(STAGING_DIR)/inventory.yml ]; then $(VENV)/bin/python bench/diagnose_fleet.py --runs $(BENCH_RUNS); \
	else echo "bench/diagnose_fleet.py skipped: no staging fleet (make staging)"; fi
	@echo; echo "load average: $$(cut -d' ' -f1-3 /proc/loadavg)"

# The main job: bootstrap, sandbox up, drill the whole scenario catalogue, print the table.
# DRILL_ARGS passes extra options, e.g. DRILL_ARGS="-e '{\"drill_scenarios\":[\"app_crash\",\"db_down\"]}'"
# DRILL_INVENTORY=staging drills the staging fleet instead (make staging first, or let this bring it up).
DRILL_STAMP := $(shell date -u +%Y%m%dT%H%M%SZ)
DRILL_INVENTORY ?= sandbox
ifeq ($(DRILL_INVENTORY),staging)
DRILL_NEEDS = staging
DRILL_INVENTORY_ARGS = -i $(STAGING_DIR)/inventory.yml
DRILL_RUN_DIR ?= $(CURDIR)/.drills/$(DRILL_STAMP)-drill
else ifeq ($(DRILL_INVENTORY),sandbox)
DRILL_NEEDS = sandbox
DRILL_INVENTORY_ARGS =
DRILL_RUN_DIR ?= $(CURDIR)/.sandbox/runs/$(DRILL_STAMP)-drill
else
$(error DRILL_INVENTORY=$(DRILL_INVENTORY): valid are sandbox (the default) and staging)
endif
.PHONY: drill
drill: $(DRILL_NEEDS)
	@rc=0; mkdir -p $(DRILL_RUN_DIR); HB_RUN_DIR=$(DRILL_RUN_DIR) ansible-playbook $(DRILL_INVENTORY_ARGS) playbooks/drill.yml \
		-e drill_run_dir=$(DRILL_RUN_DIR) $(DRILL_ARGS) || rc=$$?; echo; cat $(DRILL_RUN_DIR)/table.txt 2>/dev/null; \
		echo "HTML report: $(DRILL_RUN_DIR)/drill.html"; exit $$rc
