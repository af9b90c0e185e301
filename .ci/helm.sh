#!/usr/bin/env bash
# Installs the pinned helm into .tools/bin (gitignored) unless it is already there, and prints
# its path. The chart tests need helm; building it with `go install` pins the exact version
# through the Go module proxy's checksums, with no installer script piped into a shell.
set -euo pipefail
cd "$(dirname "$0")/.."

version=v4.3.2
bin_dir="$PWD/.tools/bin"
helm="$bin_dir/helm"

# A cached binary of another version is rebuilt, so bumping `version` is enough. The module
# version recorded in the binary is read because `go install` leaves out the ldflags that
# would make `helm version` print the patch level.
cached_version() {
    go version -m "$helm" 2>/dev/null | awk '$1 == "mod" && $2 == "helm.sh/helm/v4" {print $3}'
}
if [ ! -x "$helm" ] || [ "$(cached_version)" != "$version" ]; then
    if ! command -v go >/dev/null; then
        echo "helm.sh: building helm $version needs Go 1.26 or newer (its go.mod asks)" >&2
        exit 1
    fi
    mkdir -p "$bin_dir"
    GOBIN="$bin_dir" go install "helm.sh/helm/v4/cmd/helm@$version" >&2
fi

echo "$helm"
