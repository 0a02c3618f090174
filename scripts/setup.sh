#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to plate reads: installs every dependency, fetches and
# prepares the models, builds, then renders the built-in demo scenes and reads their plates.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/install.sh"
cmake -S "$ROOT" -B "$ROOT/build" -G Ninja >/dev/null
cmake --build "$ROOT/build" -j "$(nproc)" --target portcullis
DEMO="$ROOT/demo-out"
"$ROOT/build/src/cli/portcullis" plate demo --out "$DEMO"
"$ROOT/build/src/cli/portcullis" plate read "$DEMO"
