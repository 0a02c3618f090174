#!/usr/bin/env bash
# Builds the image_fuzz libFuzzer target with clang in build-fuzz/ and runs it for N seconds
# (default 30) on a seed corpus it generates into a temporary directory.
#
#   scripts/fuzz.sh [SECONDS]
#
# Exits non-zero if the build fails or the fuzzer finds a crash, leak, sanitizer report or
# timeout; the input that triggered it is kept in build-fuzz/artifacts/.
set -euo pipefail

seconds="${1:-30}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
  echo "usage: $0 [SECONDS]" >&2
  exit 2
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build-fuzz"
jobs="${PORTCULLIS_FUZZ_JOBS:-2}"

CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DPORTCULLIS_FUZZ=ON \
  -DPORTCULLIS_BUILD_TESTS=OFF -DPORTCULLIS_BUILD_BENCH=OFF >/dev/null
# Only the fuzz target: the rest of the tree is not needed and may be mid-edit.
cmake --build "$build" --target image_fuzz -j "$jobs"

fuzzer="$build/fuzz/image_fuzz"
work="$(mktemp -d "${TMPDIR:-/tmp}/portcullis-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" "$build/artifacts"

PORTCULLIS_FUZZ_WRITE_SEEDS="$work/corpus" "$fuzzer"

# -timeout: a single input that takes this long counts as a hang, which DecodeImage must not
# have. libFuzzer exits non-zero on any finding, and set -e passes that on.
"$fuzzer" "$work/corpus" \
  -max_total_time="$seconds" \
  -rss_limit_mb=2048 \
  -timeout=10 \
  -print_final_stats=1 \
  -artifact_prefix="$build/artifacts/"
