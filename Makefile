# The two commands a newcomer needs: `make demo` and `make test`. Both set up everything themselves:
# .venv, the system packages the tests use, and the local-fleet binaries (built once from Go modules
# into ~/.cache/skyendpoints/bin, then reused).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test unit e2e setup system-deps local-fleet-bins quick-look clean

$(BIN)/sky: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev,fleet]"
	@touch $@

setup: $(BIN)/sky

# Chromium drives the playground page test (Debian's package; no browser download at run time).
system-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "install Chromium first (Debian/Ubuntu: sudo apt-get install chromium)" >&2; exit 1; fi; }

# kube-apiserver, scheduler, controller-manager, etcd, kwok, pulumi and its kubernetes provider.
local-fleet-bins:
	bash tools/build-local-fleet-bins.sh

# The main job on the built-in default: a local fleet of 3 clusters with simulated GPUs, and the
# example endpoint deployed across it through the real Pulumi engine.
demo: setup local-fleet-bins
	$(BIN)/python -m skyendpoints_iac.localfleet.demo

# The no-build quick look: placement and rendered manifests, no cluster, no Pulumi CLI.
quick-look: setup
	$(BIN)/sky endpoint plan examples/glm-prod.yaml --fleet examples/fleet.yaml
	$(BIN)/sky endpoint render examples/glm-prod.yaml --fleet examples/fleet.yaml --out out/render
	$(BIN)/sky policy check out/render --fleet examples/fleet.yaml

unit: setup system-deps
	$(BIN)/python -m pytest tests/unit

e2e: setup local-fleet-bins
	$(BIN)/python -m pytest tests/e2e

test: setup system-deps local-fleet-bins
	$(BIN)/python -m pytest tests/unit tests/e2e

clean:
	rm -rf $(VENV) .pytest_cache out
