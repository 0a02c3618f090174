#!/usr/bin/env bash
# Builds and runs the whole test suite. `scripts/test.sh --sanitize` does the same in a separate
# AddressSanitizer + UndefinedBehaviorSanitizer build (build-asan/).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$ROOT/build"
EXTRA=()
if [ "${1:-}" = "--sanitize" ]; then
  BUILD="$ROOT/build-asan"
  EXTRA=(-DPORTCULLIS_SANITIZE=ON -DPORTCULLIS_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=Debug)
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
fi
if [ ! -f "$ROOT/models/MANIFEST.json" ]; then
  echo "test: models missing; run scripts/install.sh first" >&2
  exit 1
fi
cmake -S "$ROOT" -B "$BUILD" -G Ninja "${EXTRA[@]}" >/dev/null
cmake --build "$BUILD" -j "$(nproc)"
ctest --test-dir "$BUILD" --output-on-failure -j "$(nproc)"
