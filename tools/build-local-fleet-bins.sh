#!/usr/bin/env bash
# Build the local-fleet binaries (Kubernetes control plane, etcd, kwok, the
# Pulumi CLI and the pulumi-kubernetes provider) from the Go module proxy.
#
#   tools/build-local-fleet-bins.sh            # build if needed, print bin dir
#   BIN=$(tools/build-local-fleet-bins.sh | tail -n1)
#
# Output goes to a cache folder outside the checkout:
#   ${SKY_BIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/skyendpoints/bin}/<key>/
# where <key> hashes this script, every tools/*/go.mod + go.sum, the wrapper
# sources and the Go version/platform. A finished dir (marker .complete) is
# reused as is (fast no-op); an interrupted build resumes part by part.
# Progress goes to stderr; the last (only) stdout line is the bin dir.
#
# Nothing is downloaded except modules from the Go module proxy (GOPROXY
# without "direct", GOTOOLCHAIN=local, -mod=readonly against committed go.sum).
# See tools/README.md for versions, timings and how the pieces are used.
set -euo pipefail

TOOLS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE_ROOT="${SKY_BIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/skyendpoints/bin}"
PARALLEL="${SKY_BUILD_PARALLEL:-2}"

log() { printf '[build-local-fleet-bins] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

command -v go >/dev/null || die "go is not on PATH (need Go >= 1.26.6 for the pulumi wrapper)"

export GOTOOLCHAIN=local
export CGO_ENABLED=0
export GOFLAGS="-mod=readonly -buildvcs=false"
export GOWORK=off
# Only the module proxy: drop "direct"/"off" entries so nothing is fetched from VCS hosts.
proxy="$(go env GOPROXY)"
proxy="$(printf '%s' "$proxy" | tr ',|' '\n\n' | grep -vxE 'direct|off|' | paste -sd, - || true)"
export GOPROXY="${proxy:-https://proxy.golang.org}"

# ---- cache key --------------------------------------------------------------
key_inputs() {
  go env GOVERSION GOOS GOARCH GOAMD64
  (
    cd "$TOOLS_DIR"
    find build-local-fleet-bins.sh k8sbin etcdbin kwokbin pulumibin pulumi-kubernetes \
      -type f \( -name go.mod -o -name go.sum -o -name '*.go' -o -name '*.sh' \) -print \
      | LC_ALL=C sort | xargs sha256sum
  )
}
KEY="$(key_inputs | sha256sum | cut -c1-16)"
BIN="$CACHE_ROOT/$KEY"

if [ -f "$BIN/.complete" ]; then
  log "up to date: $BIN"
  echo "$BIN"
  exit 0
fi

mkdir -p "$CACHE_ROOT"
PARTIAL="$CACHE_ROOT/$KEY.partial"
mkdir -p "$PARTIAL"

# One builder at a time per key.
if command -v flock >/dev/null; then
  exec 9>"$CACHE_ROOT/$KEY.lock"
  flock 9
  if [ -f "$BIN/.complete" ]; then echo "$BIN"; exit 0; fi
fi

modver() { (cd "$TOOLS_DIR/$1" && go list -m -f '{{if .Replace}}{{.Replace.Version}}{{else}}{{.Version}}{{end}}' "$2"); }

# Record one built binary: name, module@version, seconds, bytes.
record() {
  local name="$1" modv="$2" secs="$3"
  local size; size="$(stat -c %s "$PARTIAL/$name")"
  printf '%s\t%s\t%s\t%s\n' "$name" "$modv" "$secs" "$size" >>"$PARTIAL/BUILDINFO.tsv"
  log "built $name ($modv) in ${secs}s, $size bytes"
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }'; }

# build_one <wrapper dir> <output name> <module for version> <ldflags> <extra go build args...>
build_one() {
  local dir="$1" name="$2" mod="$3" ldflags="$4"; shift 4
  if [ -f "$PARTIAL/.done-$name" ]; then log "$name already built"; return; fi
  local v; v="$(modver "$dir" "$mod")"
  log "building $name from $mod@$v ..."
  local t0; t0="$(now)"
  (cd "$TOOLS_DIR/$dir" && go build -p "$PARALLEL" -trimpath -ldflags "$ldflags" -o "$PARTIAL/$name" "$@")
  record "$name" "$mod@$v" "$(elapsed "$t0")"
  touch "$PARTIAL/.done-$name"
}

[ -f "$PARTIAL/BUILDINFO.tsv" ] || printf 'binary\tmodule@version\tbuild_seconds\tbytes\n' >"$PARTIAL/BUILDINFO.tsv"

# ---- Kubernetes control plane ------------------------------------------------
K8S_VERSION="$(modver k8sbin k8s.io/kubernetes)"          # e.g. v1.35.4
k8s_minor="${K8S_VERSION#v1.}"; k8s_minor="${k8s_minor%%.*}"
K8S_LDFLAGS="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  K8S_LDFLAGS+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$k8s_minor"
  K8S_LDFLAGS+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done
for b in kube-apiserver kube-controller-manager kube-scheduler; do
  build_one k8sbin "$b" k8s.io/kubernetes "$K8S_LDFLAGS" "k8s.io/kubernetes/cmd/$b"
done

# ---- etcd --------------------------------------------------------------------
ETCD_VERSION="$(modver etcdbin go.etcd.io/etcd/server/v3)"
build_one etcdbin etcd go.etcd.io/etcd/server/v3 \
  "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=gomod-$ETCD_VERSION" go.etcd.io/etcd/server/v3

# ---- kwok --------------------------------------------------------------------
KWOK_VERSION="$(modver kwokbin sigs.k8s.io/kwok)"
build_one kwokbin kwok sigs.k8s.io/kwok \
  "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}" sigs.k8s.io/kwok/cmd/kwok

# ---- pulumi CLI ----------------------------------------------------------------
PULUMI_VERSION="$(modver pulumibin github.com/pulumi/pulumi/pkg/v3)"
sdk_v="$(modver pulumibin github.com/pulumi/pulumi/sdk/v3)"
[ "$sdk_v" = "$PULUMI_VERSION" ] || die "pulumibin: pkg/v3 $PULUMI_VERSION != sdk/v3 $sdk_v"
build_one pulumibin pulumi github.com/pulumi/pulumi/pkg/v3 \
  "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" \
  -tags osusergo,grpcnotrace github.com/pulumi/pulumi/pkg/v3/cmd/pulumi

# ---- pulumi-kubernetes provider ------------------------------------------------
# The provider module is only served as the pseudo-version of tag v4.25.0. The
# PyPI SDK (pulumi-kubernetes 4.34.2) asks the engine for >= 4.34.2 and the
# engine warns when the plugin reports less, so the binary reports
# "<SDK version>+src.<real version>.<commit>": semver build metadata is ignored
# by version comparison and keeps the real source visible.
PK_MOD=github.com/pulumi/pulumi-kubernetes/provider/v4
PK_MODV="$(modver pulumi-kubernetes "$PK_MOD")"
PK_SRC_TAG=4.25.0               # tag whose commit is PK_MODV (f47bc2d6f199)
PK_SDK_VERSION=4.34.2           # PyPI pulumi-kubernetes used by the project
PK_VERSION="$PK_SDK_VERSION+src.$PK_SRC_TAG.${PK_MODV##*-}"
if [ ! -f "$PARTIAL/.done-pulumi-resource-kubernetes" ]; then
  log "building pulumi-resource-kubernetes from $PK_MOD@$PK_MODV (reports $PK_VERSION) ..."
  t0="$(now)"
  work="$PARTIAL/.work/pulumi-kubernetes"
  rm -rf "$work"; mkdir -p "$work"
  cp -R "$TOOLS_DIR/pulumi-kubernetes/." "$work/"
  chmod -R u+w "$work"
  (
    cd "$work"
    go mod download "$PK_MOD"
    src="$(go list -m -f '{{.Dir}}' "$PK_MOD")/cmd/pulumi-resource-kubernetes"
    go run -p "$PARALLEL" ./cmd/gen-embed -version "$PK_VERSION" -src "$src" -out ./cmd/pulumi-resource-kubernetes
    go build -p "$PARALLEL" -trimpath \
      -ldflags "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$PK_VERSION" \
      -o "$PARTIAL/pulumi-resource-kubernetes" ./cmd/pulumi-resource-kubernetes
  )
  rm -rf "$PARTIAL/.work"
  record pulumi-resource-kubernetes "$PK_MOD@$PK_MODV" "$(elapsed "$t0")"
  touch "$PARTIAL/.done-pulumi-resource-kubernetes"
fi

# ---- scripts ---------------------------------------------------------------------
# Legacy analyzer shim (pulumi-analyzer-policy-<runtime>): called as
#   <shim> <engine address> <policy pack dir> [-opt=value ...]
# If called with only the engine address (binary-analyzer mode, i.e.
# `--policy-pack <pack>/<this script or a symlink to it>`), the pack dir is the
# directory of $0 (symlinks are not resolved on purpose).
cat >"$PARTIAL/pulumi-analyzer-policy-python" <<'EOF'
#!/bin/sh
# Runs a Python policy pack without pulumi-language-python. See tools/README.md.
if [ "$#" -eq 1 ]; then
  cd "$(dirname "$0")" || exit 1
  set -- "$1" .
fi
exec "${PULUMI_PYTHON_CMD:-python3}" -u -m pulumi.policy "$@"
EOF
chmod +x "$PARTIAL/pulumi-analyzer-policy-python"

cat >"$PARTIAL/versions.env" <<EOF
# Versions of the binaries in this directory (sourceable by sh).
K8S_VERSION=$K8S_VERSION
ETCD_VERSION=$ETCD_VERSION
KWOK_VERSION=$KWOK_VERSION
PULUMI_VERSION=$PULUMI_VERSION
PULUMI_KUBERNETES_PROVIDER_VERSION=$PK_VERSION
PULUMI_KUBERNETES_PROVIDER_MODULE=$PK_MOD@$PK_MODV
PULUMI_KUBERNETES_SDK_VERSION=$PK_SDK_VERSION
GO_VERSION=$(go env GOVERSION)
EOF

rm -f "$PARTIAL"/.done-*
touch "$PARTIAL/.complete"
rm -rf "$BIN"
mv "$PARTIAL" "$BIN"
log "done: $BIN"
column -t -s "$(printf '\t')" "$BIN/BUILDINFO.tsv" >&2 2>/dev/null || cat "$BIN/BUILDINFO.tsv" >&2
echo "$BIN"
