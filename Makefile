# The two commands a newcomer needs: `make demo` and `make test`. Both set up everything themselves:
# .venv (from the lock file requirements/dev.lock), the system packages the tests use, and the local-fleet
# binaries (built once from Go modules into ~/.cache/skyendpoints/bin, then reused). Both first check every
# prerequisite (tools/check-prereqs.sh: Go, disk, the ../shared folder, openssl) so nothing long starts
# that would fail later.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test unit e2e setup system-deps local-fleet-bins quick-look clean lock prereqs-unit prereqs-fleet

# The exact dev environment CI tests: the lock (dev extra, which includes [fleet]) first, then the project
# itself (editable, nothing resolved).
$(BIN)/sky: pyproject.toml requirements/dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements/dev.lock
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $@

setup: $(BIN)/sky

# Re-resolve requirements/dev.lock after changing dependencies in pyproject.toml (uv is in the dev extra).
lock: setup
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --quiet -o requirements/dev.lock

prereqs-unit:
	@bash tools/check-prereqs.sh unit

prereqs-fleet:
	@bash tools/check-prereqs.sh fleet

# Chromium drives the playground page test (Debian's package; no browser download at run time).
system-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "install Chromium first (Debian/Ubuntu: sudo apt-get install chromium)" >&2; exit 1; fi; }

# kube-apiserver, scheduler, controller-manager, etcd, kwok, pulumi and its kubernetes provider; then the
# data plane's endpoint picker (its own cache key, so bumping it never rebuilds the fleet binaries).
local-fleet-bins: prereqs-fleet
	bash tools/build-local-fleet-bins.sh
	bash tools/build-dataplane-bins.sh
	bash tools/build-autoscale-bins.sh

# The main job on the built-in default: a local fleet of 3 clusters with simulated GPUs, and the
# example endpoint deployed across it through the real Pulumi engine.
demo: prereqs-fleet setup local-fleet-bins
	$(BIN)/python -m skyendpoints_iac.localfleet.demo

# The no-build quick look: placement and rendered manifests, no cluster, no Pulumi CLI.
quick-look: setup
	$(BIN)/sky endpoint plan examples/glm-prod.yaml --fleet examples/fleet.yaml
	$(BIN)/sky endpoint render examples/glm-prod.yaml --fleet examples/fleet.yaml --out out/render
	$(BIN)/sky policy check out/render --fleet examples/fleet.yaml

unit: prereqs-unit setup system-deps
	$(BIN)/python -m pytest tests/unit

e2e: prereqs-fleet setup local-fleet-bins
	$(BIN)/python -m pytest tests/e2e

# Writes its wall time and end time to ~/.cache/skyendpoints/make-test.json (read by bench/failover.py --json).
test: prereqs-fleet setup system-deps local-fleet-bins
	@start=$$(date +%s); status=0; $(BIN)/python -m pytest tests/unit tests/e2e || status=$$?; \
	  dir="$${XDG_CACHE_HOME:-$$HOME/.cache}/skyendpoints"; mkdir -p "$$dir"; \
	  printf '{"seconds": %s, "finished_at": "%s", "exit": %s}\n' "$$(( $$(date +%s) - start ))" \
	    "$$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$$status" > "$$dir/make-test.json"; exit $$status

clean:
	rm -rf $(VENV) .pytest_cache out
