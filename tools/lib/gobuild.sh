# Shared by the cache-keyed Go builders (tools/build-autoscale-bins.sh; the
# same pattern as tools/build-dataplane-bins.sh): Go environment, a cache key
# over the builder's inputs, one builder per key (flock), a .partial dir that
# becomes <key>/ with a .complete marker, and BUILDINFO.tsv rows.
#
#   source "$TOOLS_DIR/lib/gobuild.sh"
#   gobuild_init <log tag>
#   gobuild_open <key prefix> <input paths relative to tools/...>   # exits 0 if cached
#   gobuild_tool <wrapper dir> <name> <module> <ldflags> <package>
#   gobuild_finish                                                    # prints the bin dir
#
# Nothing is fetched except from the Go module proxy (GOPROXY without
# "direct"/"off"), GOTOOLCHAIN=local, -mod=readonly against the committed go.sum.
# shellcheck shell=bash

gobuild_init() {
  GOBUILD_TAG="$1"
  CACHE_ROOT="${SKY_BIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/skyendpoints/bin}"
  PARALLEL="${SKY_BUILD_PARALLEL:-2}"
  command -v go >/dev/null || die "go is not on PATH (need Go >= 1.26.7)"
  export GOTOOLCHAIN=local
  export CGO_ENABLED=0
  export GOFLAGS="-mod=readonly -buildvcs=false"
  export GOWORK=off
  local proxy
  proxy="$(go env GOPROXY)"
  proxy="$(printf '%s' "$proxy" | tr ',|' '\n\n' | grep -vxE 'direct|off|' | paste -sd, - || true)"
  export GOPROXY="${proxy:-https://proxy.golang.org}"
}

log() { printf '[%s] %s\n' "${GOBUILD_TAG:-gobuild}" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# gobuild_open <prefix> <paths under tools/...>: sets KEY, BIN, PARTIAL; exits 0
# printing BIN when that key is already complete.
gobuild_open() {
  local prefix="$1"; shift
  local sum
  sum="$( { go env GOVERSION GOOS GOARCH GOAMD64
            (cd "$TOOLS_DIR" && find lib/gobuild.sh "$@" -type f \
               \( -name go.mod -o -name go.sum -o -name '*.sh' \) -print | LC_ALL=C sort | xargs sha256sum)
          } | sha256sum | cut -c1-16)"
  KEY="$prefix-$sum"
  BIN="$CACHE_ROOT/$KEY"
  if [ -f "$BIN/.complete" ]; then log "up to date: $BIN"; echo "$BIN"; exit 0; fi
  mkdir -p "$CACHE_ROOT"
  exec 9>"$CACHE_ROOT/$KEY.lock"
  flock 9
  if [ -f "$BIN/.complete" ]; then echo "$BIN"; exit 0; fi
  PARTIAL="$CACHE_ROOT/$KEY.partial"
  mkdir -p "$PARTIAL"
  [ -f "$PARTIAL/BUILDINFO.tsv" ] || printf 'binary\tmodule@version\tbuild_seconds\tbytes\n' >"$PARTIAL/BUILDINFO.tsv"
}

# The version of <module> the wrapper module <dir> resolves.
gobuild_modver() { (cd "$TOOLS_DIR/$1" && go list -m -f '{{if .Replace}}{{.Replace.Version}}{{else}}{{.Version}}{{end}}' "$2"); }

# gobuild_tool <dir> <name> <module> <ldflags> <package> [go build args...]:
# one binary into PARTIAL, resumable (a .done-<name> marker), one BUILDINFO row.
gobuild_tool() {
  local dir="$1" name="$2" mod="$3" ldflags="$4" pkg="$5"; shift 5
  if [ -f "$PARTIAL/.done-$name" ]; then log "$name already built"; return; fi
  local v t0 secs
  v="$(gobuild_modver "$dir" "$mod")"
  log "building $name from $pkg ($mod@$v) ..."
  t0="$(date +%s)"
  (cd "$TOOLS_DIR/$dir" && nice -n "${SKY_BUILD_NICE:-10}" go build -p "$PARALLEL" -trimpath \
     -ldflags "$ldflags" "$@" -o "$PARTIAL/$name" "$pkg")
  secs=$(( $(date +%s) - t0 ))
  printf '%s\t%s@%s\t%s\t%s\n' "$name" "$mod" "$v" "$secs" "$(stat -c %s "$PARTIAL/$name")" >>"$PARTIAL/BUILDINFO.tsv"
  log "built $name ($mod@$v) in ${secs}s"
  touch "$PARTIAL/.done-$name"
}

# Seal PARTIAL as BIN (versions.env lines come from stdin) and print BIN.
gobuild_finish() {
  { echo "# Versions of the binaries in this directory (sourceable by sh)."; cat; echo "GO_VERSION=$(go env GOVERSION)"; } \
    >"$PARTIAL/versions.env"
  rm -f "$PARTIAL"/.done-*
  touch "$PARTIAL/.complete"
  rm -rf "$BIN"
  mv "$PARTIAL" "$BIN"
  log "done: $BIN"
  cat "$BIN/BUILDINFO.tsv" >&2
  echo "$BIN"
}
