#!/usr/bin/env bash
# Installs the load generator of the benchmarks, oha, if it is missing: built by cargo into
# the repository's .tools/ (which git ignores), or taken from PATH when one is there.
#
#     bench/tools.sh
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$REPO/.tools"

# bench/limits.py looks in .tools/bin first, then on PATH; either one is enough.
if [ -x "$TOOLS/bin/oha" ]; then
  echo "oha: .tools/bin/oha"
elif command -v oha >/dev/null 2>&1; then
  echo "oha: $(command -v oha)"
else
  if ! command -v cargo >/dev/null 2>&1; then
    echo "oha is missing and cargo is not installed: install Rust (https://rustup.rs)" >&2
    exit 1
  fi
  # --locked builds with the versions oha was released with, not whatever is newest.
  cargo install oha --locked --root "$TOOLS"
  echo "oha: installed in .tools/bin/oha"
fi
