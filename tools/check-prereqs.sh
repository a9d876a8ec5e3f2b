#!/usr/bin/env bash
# Check, in seconds, everything `make test` / `make demo` need BEFORE the long local-fleet binary build,
# and say how to provide each missing one. Every check runs; the exit status is 1 if any failed.
#
#   tools/check-prereqs.sh unit     # unit tests: Python, the shared upstream folder
#   tools/check-prereqs.sh fleet    # + Go (tools/build-local-fleet-bins.sh), openssl, free disk
#
# Overrides (also what tests/unit/test_install_prereqs.py uses): PYTHON, GO, OPENSSL, SKY_SHARED_DIR,
# SKY_MIN_FREE_GB (free disk the build needs: Go module + build caches and the binaries, ~6 GB measured).
set -uo pipefail

MODE="${1:-fleet}"
case "$MODE" in unit|fleet) ;; *) echo "usage: $0 unit|fleet" >&2; exit 2 ;; esac

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
GO="${GO:-go}"
OPENSSL="${OPENSSL:-openssl}"
# The newest `go` directive among the build scripts' wrapper modules (tools/*/go.mod): GOTOOLCHAIN=local
# refuses a module that asks for a newer Go, so that directive is the real minimum (one home: the go.mod files).
GO_MIN="$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$ROOT"/tools/*/go.mod | sort -V | tail -n1)"
PYTHON_MIN="3.10"      # pyproject.toml requires-python
MIN_FREE_GB="${SKY_MIN_FREE_GB:-8}"

failed=0
ok() { printf 'ok       %s\n' "$*"; }
missing() { printf 'MISSING  %s\n' "$1" >&2; shift; for line in "$@"; do printf '         %s\n' "$line" >&2; done; failed=1; }
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

# ---- Python -----------------------------------------------------------------------------------
if pyver="$("$PYTHON" -c 'import sys, venv; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)"; then
  if version_ge "$pyver" "$PYTHON_MIN"; then ok "python $pyver ($PYTHON)"
  else missing "python >= $PYTHON_MIN (found $pyver at $PYTHON)" "install Python $PYTHON_MIN or newer, or run make with PYTHON=/path/to/python3.x"; fi
else
  missing "python >= $PYTHON_MIN with the venv module ($PYTHON)" \
    "Debian/Ubuntu: apt-get install python3 python3-venv; or run make with PYTHON=/path/to/python3"
fi

# ---- the shared upstream folder (CRDs and chart schemas the tests and the local fleet read) ----
shared="${SKY_SHARED_DIR:-$ROOT/../shared}"
for sub in crds chart-schemas; do
  if [ -d "$shared/$sub" ] && [ -n "$(ls -A "$shared/$sub" 2>/dev/null)" ]; then ok "upstream $sub/ in $shared"
  else missing "upstream $sub/ in $shared" \
    "the pinned upstream CRDs (crds/) and Helm values schemas (chart-schemas/) of the versions in components/;" \
    "put them next to the checkout as ../shared, or set SKY_SHARED_DIR=/path/to/folder"; fi
done

if [ "$MODE" = fleet ]; then
  # ---- Go, for tools/build-local-fleet-bins.sh ----------------------------------------------------
  if gover="$("$GO" env GOVERSION 2>/dev/null)" && [ -n "$gover" ]; then
    gover="${gover#go}"
    if version_ge "$gover" "$GO_MIN"; then ok "go $gover"
    else missing "go >= $GO_MIN (found $gover)" \
      "tools/build-local-fleet-bins.sh builds the local fleet's binaries with the local toolchain (GOTOOLCHAIN=local);" \
      "install Go $GO_MIN or newer from https://go.dev/dl/ (or your package manager) and put it on PATH"; fi
  else
    missing "go >= $GO_MIN (not on PATH: $GO)" \
      "tools/build-local-fleet-bins.sh builds kube-apiserver, etcd, kwok and pulumi from Go modules;" \
      "install Go $GO_MIN or newer from https://go.dev/dl/ (or your package manager) and put it on PATH"
  fi

  # ---- openssl, for the local clusters' certificates (localfleet/pki.py) ---------------------------
  if command -v "$OPENSSL" >/dev/null 2>&1; then ok "openssl ($(command -v "$OPENSSL"))"
  else missing "openssl" "the local fleet makes its clusters' certificates with it; Debian/Ubuntu: apt-get install openssl"; fi

  # ---- free disk where the Go caches and the binaries go ----------------------------------------
  cache="${SKY_BIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/skyendpoints/bin}"
  probe="$cache"; while [ ! -d "$probe" ]; do probe="$(dirname "$probe")"; done
  free_kb="$(df -Pk "$probe" | awk 'NR==2 {print $4}')"
  free_gb=$(( ${free_kb:-0} / 1024 / 1024 ))
  if [ "$free_gb" -ge "$MIN_FREE_GB" ]; then ok "disk: ${free_gb} GB free at $probe"
  else missing "disk: ${MIN_FREE_GB} GB free at $probe (found ${free_gb} GB)" \
    "the binary build keeps Go module and build caches (~6 GB) and the binaries under $cache;" \
    "free space there, or point SKY_BIN_CACHE, GOCACHE and GOMODCACHE at a roomier disk"; fi
fi

if [ "$failed" -ne 0 ]; then
  echo "prerequisites missing (see above): nothing was built" >&2
  exit 1
fi
