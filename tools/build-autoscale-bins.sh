#!/usr/bin/env bash
# Build the local fleet's autoscaling binaries from the Go module proxy:
# Prometheus (github.com/prometheus/prometheus v0.316.0 = Prometheus 3.16.0,
# cmd/prometheus) and KEDA (github.com/kedacore/keda/v2 v2.21.0, cmd/operator
# and cmd/adapter = the metrics API server).
#
#   tools/build-autoscale-bins.sh              # build if needed, print bin dir
#
# Its own cache key (like tools/build-dataplane-bins.sh), so bumping these never
# rebuilds the control plane. Output:
#   ${SKY_BIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/skyendpoints/bin}/autoscale-<key>/
# <key> hashes this script, tools/lib/gobuild.sh, the wrapper modules
# tools/prometheusbin and tools/kedabin (go.mod + go.sum) and the Go version.
# Two wrapper modules, not one: each keeps its upstream's exact dependency
# versions (one module would let MVS raise shared k8s.io/* versions). kedabin
# repeats KEDA's one replace (a dependency's replaces are ignored otherwise).
# Prometheus is built without the builtinassets tag: no web UI, the HTTP API
# (what the fleet uses) is complete.
set -euo pipefail
TOOLS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib/gobuild.sh
source "$TOOLS_DIR/lib/gobuild.sh"
gobuild_init build-autoscale-bins
gobuild_open autoscale build-autoscale-bins.sh prometheusbin kedabin

PROM=github.com/prometheus/prometheus
PROM_VERSION="$(gobuild_modver prometheusbin "$PROM")"          # v0.316.0
prom_minor="${PROM_VERSION#v0.}"; prom_minor="${prom_minor%%.*}"   # 316
prom_release="3.$(( prom_minor - 300 )).${PROM_VERSION##*.}"        # v0.316.0 -> 3.16.0
PV=github.com/prometheus/common/version
gobuild_tool prometheusbin prometheus "$PROM" \
  "-s -w -X $PV.Version=$prom_release -X $PV.Revision=gomod-$PROM_VERSION -X $PV.Branch=gomod" \
  "$PROM/cmd/prometheus"

KEDA=github.com/kedacore/keda/v2
KEDA_VERSION="$(gobuild_modver kedabin "$KEDA")"
KV="$KEDA/version"
for b in operator adapter; do
  gobuild_tool kedabin "keda-$b" "$KEDA" \
    "-s -w -X $KV.Version=$KEDA_VERSION -X $KV.GitCommit=gomod-$KEDA_VERSION" "$KEDA/cmd/$b"
done

# KEDA's own CRDs of this version, next to the binaries: the operator exits when a kind it owns is not
# served, and the platform's pinned set (../shared/crds) has no eventing.keda.sh CRDs
# (localfleet/kedarun.py installs the missing ones).
keda_src="$(cd "$TOOLS_DIR/kedabin" && go list -m -f '{{.Dir}}' "$KEDA")"
mkdir -p "$PARTIAL/keda-crds"
cp "$keda_src"/config/crd/bases/*.yaml "$PARTIAL/keda-crds/"
chmod 0644 "$PARTIAL"/keda-crds/*.yaml

gobuild_finish <<VERSIONS
PROMETHEUS_VERSION=$prom_release
PROMETHEUS_MODULE=$PROM@$PROM_VERSION
KEDA_VERSION=$KEDA_VERSION
VERSIONS
