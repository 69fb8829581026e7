# The two commands a newcomer runs: `make demo` and `make test`. Each sets up what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# one venv, two stamps: the demo's install (minga alone) and the tests' (every extra, which includes it)
DEMO_STAMP := $(VENV)/.installed-demo
TEST_STAMP := $(VENV)/.installed-test
ARGS   ?=

# command:debian-package pairs, installed only when the command is missing
DEMO_DEBS := 
TEST_DEBS := nats-server:nats-server etcd:etcd-server haproxy:haproxy mpirun:openmpi-bin \
             :libopenmpi-dev java:openjdk-17-jre-headless \
             wrk:wrk prometheus:prometheus chromium:chromium git:git \
             ip:iproute2 iptables:iptables

.PHONY: demo test bench lint venv debs-test debs-demo clean

# Debian and Ubuntu ship Python without venv/ensurepip: bring python3-venv when venv cannot start
NEW_VENV = test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) 2>/dev/null || \
	{ rm -rf $(VENV); scripts/ensure-debs.sh :python3-venv :python3-dev && $(PYTHON) -m venv $(VENV); }

# the demo runs on minga's own dependencies: no engine, no test tool
$(DEMO_STAMP): pyproject.toml
	@$(NEW_VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	@touch $@

# after `make demo` this upgrades the same venv to the test extra
$(TEST_STAMP): pyproject.toml
	@$(NEW_VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $@ $(DEMO_STAMP)

venv: $(TEST_STAMP)

debs-test:
	@scripts/ensure-debs.sh $(TEST_DEBS)

debs-demo:
	@scripts/ensure-debs.sh $(DEMO_DEBS)

demo: debs-demo $(DEMO_STAMP)
	$(BIN)/python -m minga demo $(ARGS)

# every extra is installed here, so a skipped test is a failure (tests/no_skip.py)
test: debs-test venv lint
	MINGA_TEST_ALL_EXTRAS=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check src tests bench examples
	$(BIN)/mypy

# every benchmark at its default size; `make bench ARGS=--quick` for a short check, ARGS="bus gateway" for some
bench: debs-test venv
	$(BIN)/python bench/run_all.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
