#!/usr/bin/env bash
# Builds the pinned Helm CLI into .cache/bin/helm (the chart test renders deploy/helm with it).
# Helm comes from the Go module proxy, so no binary download site is needed; Go must be installed
# (PATH or /usr/local/go/bin). Idempotent: does nothing when the pinned version is already there.
# Without Go it prints why and exits 0; the chart test then fails with the same reason.
set -euo pipefail

HELM_VERSION="v3.22.0"
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/.cache/bin"
helm="$bin/helm"

if [ -x "$helm" ] && "$helm" version --template '{{.Version}}' 2>/dev/null | grep -qx "$HELM_VERSION"; then
    exit 0
fi

go="$(command -v go || true)"
if [ -z "$go" ] && [ -x /usr/local/go/bin/go ]; then go=/usr/local/go/bin/go; fi
if [ -z "$go" ]; then
    echo "helm.sh: Go is not installed; install Go (https://go.dev/dl/) to build helm $HELM_VERSION" >&2
    exit 0
fi

mkdir -p "$bin"
echo "helm.sh: building helm $HELM_VERSION with $go (once; cached in .cache/bin)" >&2
# The version is stamped the way Helm's own Makefile does, so `helm version` reports it.
GOBIN="$bin" CGO_ENABLED=0 "$go" install \
    -ldflags "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
